"""Any change to configuration rows invalidates the gateway's config snapshot.

Signals rather than explicit calls so that admin, the API, management commands and tests
all invalidate alike.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import ApiKey, Combo, GatewaySettings, IpBan, ModelAlias, ResilienceProfile
from .snapshot import snapshot_invalidate


@receiver([post_save, post_delete], sender=ApiKey)
def _api_key_changed(**_: object) -> None:
    snapshot_invalidate()


@receiver([post_save, post_delete], sender=ModelAlias)
@receiver([post_save, post_delete], sender=Combo)
@receiver([post_save, post_delete], sender=ResilienceProfile)
@receiver([post_save, post_delete], sender=GatewaySettings)
@receiver([post_save, post_delete], sender=IpBan)
def _routing_changed(**_: object) -> None:
    snapshot_invalidate()
