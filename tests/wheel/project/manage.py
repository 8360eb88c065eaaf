#!/usr/bin/env python
"""The bare-system round trip's Django project (tests/wheel/README.md)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wheelproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
