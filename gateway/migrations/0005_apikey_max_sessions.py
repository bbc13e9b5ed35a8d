"""ApiKey.max_sessions: the per-key limit of active client sessions (docs/API.md §12)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("gateway", "0004_apikey_tokens_per_minute")]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="max_sessions",
            field=models.PositiveIntegerField(
                blank=True, help_text="Active client sessions this key may have at once; empty = no limit", null=True
            ),
        ),
    ]
