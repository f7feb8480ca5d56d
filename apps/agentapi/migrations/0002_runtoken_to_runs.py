"""RunToken moved to apps.runs (runs.0004): forgotten here, its table kept as it is."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("agentapi", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="RunToken")],
            database_operations=[],
        ),
    ]
