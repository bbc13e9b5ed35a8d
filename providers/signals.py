from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from gateway.snapshot import snapshot_invalidate

from .models import ProviderConnection, ProviderModel, ProviderNode


@receiver([post_save, post_delete], sender=ProviderConnection)
def _connection_changed(**_: object) -> None:
    snapshot_invalidate()


@receiver([post_save, post_delete], sender=ProviderNode)
@receiver([post_save, post_delete], sender=ProviderModel)
def _custom_provider_changed(**_: object) -> None:
    snapshot_invalidate()
