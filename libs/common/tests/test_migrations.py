import subprocess
import sys


def test_messaging_tables_are_complete_when_only_the_migration_helpers_are_imported():
    """A service's first migration must create the inbox even if nothing else imported the consumer."""
    code = "import crm_common.migrations as m; print(sorted(m.messaging_metadata.tables))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "['dead_letters', 'inbox', 'outbox', 'relay_marks']"
