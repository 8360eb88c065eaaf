"""The worker's libpq connection string, built from a Django ``DATABASES`` entry."""

from __future__ import annotations

from fastq_django.conf import libpq_conninfo


def test_tcp_options_reach_the_worker_connections():
    """Keepalives, a TCP user timeout and a connect timeout in OPTIONS reach libpq, so a
    worker cut off from the database by the network gives up on its connections and
    reconnects instead of waiting on them for as long as the kernel retransmits."""
    info = libpq_conninfo(
        {
            "HOST": "10.0.0.1",
            "PORT": "5432",
            "NAME": "app",
            "USER": "u",
            "PASSWORD": "it's",
            "OPTIONS": {
                "connect_timeout": 3,
                "keepalives": 1,
                "keepalives_idle": 2,
                "keepalives_interval": 1,
                "keepalives_count": 3,
                "tcp_user_timeout": 4000,
                "isolation_level": 1,  # Django's own: not a libpq keyword
            },
        }
    )
    assert info == (
        "host='10.0.0.1' port='5432' dbname='app' user='u' password='it\\'s' "
        "application_name='fastq_worker' connect_timeout='3' keepalives='1' "
        "keepalives_idle='2' keepalives_interval='1' keepalives_count='3' "
        "tcp_user_timeout='4000'"
    )
