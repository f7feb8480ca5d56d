"""RunToken, moved here from apps.agentapi: the same table (agentapi_runtoken), no data moved."""

import django.db.models.deletion
from django.db import migrations, models


def content_type_to_runs(apps, schema_editor):
    """Keep the model's content type (and so its permissions) under its new app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label="runs", model="runtoken").exists():
        ContentType.objects.using(db).filter(app_label="agentapi", model="runtoken").update(
            app_label="runs"
        )


def content_type_to_agentapi(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label="agentapi", model="runtoken").exists():
        ContentType.objects.using(db).filter(app_label="runs", model="runtoken").update(
            app_label="agentapi"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("agentapi", "0002_runtoken_to_runs"),
        ("runs", "0003_run_parent_waiting"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RunToken",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("key_hash", models.CharField(max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "run",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="token",
                                to="runs.run",
                            ),
                        ),
                    ],
                    options={"db_table": "agentapi_runtoken"},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_runs, content_type_to_agentapi, elidable=True),
    ]
