"""The response cache's persistent tier on the embedded default (docs/API.md §11)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0006_settings"),
    ]

    operations = [
        migrations.CreateModel(
            name="CacheEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=64, unique=True)),
                ("model", models.CharField(db_index=True, help_text="provider/model that answered", max_length=300)),
                (
                    "requested",
                    models.CharField(db_index=True, help_text="The model name the client sent", max_length=300),
                ),
                ("scope", models.CharField(blank=True, db_index=True, max_length=64)),
                ("embedding", models.BinaryField(blank=True, null=True)),
                ("body", models.BinaryField()),
                ("size", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField()),
                ("expires_at", models.DateTimeField(db_index=True)),
            ],
            options={
                "verbose_name_plural": "cache entries",
                "ordering": ["-created_at", "-id"],
            },
        ),
    ]
