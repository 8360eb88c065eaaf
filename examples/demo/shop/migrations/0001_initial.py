from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("customer_phone", models.CharField(max_length=32)),
                ("quantity", models.IntegerField()),
                ("unit_price_cents", models.IntegerField()),
                ("total_cents", models.IntegerField(null=True)),
            ],
        ),
        migrations.CreateModel(
            name="Sms",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("phone", models.CharField(max_length=32)),
                ("text", models.CharField(max_length=160)),
            ],
        ),
    ]
