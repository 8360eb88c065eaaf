from django.db import models


class Article(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField()
    words = models.IntegerField(null=True)


class HookCall(models.Model):
    """What the result hook was given, one row per finished task."""

    task_id = models.CharField(max_length=32)
    func = models.CharField(max_length=256)
    success = models.BooleanField()
    result = models.TextField()
    group = models.CharField(max_length=100, null=True)


class Digest(models.Model):
    articles = models.IntegerField()
    words = models.IntegerField()
    at = models.DateTimeField(auto_now_add=True)


class Fetch(models.Model):
    """Calls to the (pretend) wire service: the first one fails."""

    at = models.DateTimeField(auto_now_add=True)
