"""``celery.utils``: only what task modules import (``celery.utils.log``)."""
