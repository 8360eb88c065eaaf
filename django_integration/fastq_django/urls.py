"""fastq's URLs: ``path("fastq/", include("fastq_django.urls"))`` serves
``/fastq/metrics`` (Prometheus; fastq_django/views.py)."""

from __future__ import annotations

from django.urls import path

from fastq_django import views

app_name = "fastq"

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
]
