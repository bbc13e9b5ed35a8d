"""Seed the "default" resilience profile; the field defaults of 0002 are the values."""

from django.db import migrations


def seed(apps, schema_editor):
    ResilienceProfile = apps.get_model("gateway", "ResilienceProfile")
    ResilienceProfile.objects.get_or_create(auth_type="default")


class Migration(migrations.Migration):
    dependencies = [("gateway", "0002_routing")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
