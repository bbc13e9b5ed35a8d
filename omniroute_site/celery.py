import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omniroute_site.settings")

app = Celery("omniroute")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every periodic task, in one place (run by `celery -A omniroute_site beat`, or a worker
# started with -B). The usage stream's consumer runs every second; a run that finds no
# worker within 5 s expires instead of queueing up behind an outage.
app.conf.beat_schedule = {
    "usage-purge-old": {"task": "usage.tasks.usage_purge_old", "schedule": crontab(hour=3, minute=17)},
    "cache-purge-expired": {"task": "gateway.tasks.cache_purge_expired", "schedule": crontab(minute="*/10")},
    "usage-consume-stream": {
        "task": "usage.tasks.consume_usage_stream",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
    # A few minutes past the hour: the recorder's last batches of the hour are in by then.
    "usage-rollup-hours": {"task": "usage.tasks.usage_rollup_hours", "schedule": crontab(minute=4)},
    "usage-rollup-purge-old": {"task": "usage.tasks.usage_rollup_purge_old", "schedule": crontab(hour=3, minute=27)},
}
