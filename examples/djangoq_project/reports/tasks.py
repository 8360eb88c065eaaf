"""Plain functions, run by dotted path."""

from .models import Article, Digest, Fetch


def count_words(article_id):
    article = Article.objects.get(pk=article_id)
    article.words = len(article.body.split())
    article.save(update_fields=["words"])
    return article.words


def digest():
    articles = Article.objects.exclude(words=None)
    return Digest.objects.create(articles=articles.count(), words=sum(a.words for a in articles)).pk


def fetch_wire():
    """The wire service fails the first call; Django-Q2 runs the task again after retry."""
    calls = Fetch.objects.count()
    Fetch.objects.create()
    if calls == 0:
        raise ConnectionError("wire service unavailable")
    return "fetched"
