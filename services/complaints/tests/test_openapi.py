"""The HTTP contract the gateway and console rely on is published in the OpenAPI document."""

from crm_complaints.main import create_app
from crm_complaints.settings import ComplaintsSettings


def test_contract_paths_are_in_openapi(tmp_path):
    app = create_app(ComplaintsSettings(database_url=f"sqlite:///{tmp_path / 'x.db'}"), start_background=False)
    spec = app.openapi()
    paths = spec["paths"]
    for path in (
        "/complaints",
        "/complaints/{complaint_id}",
        "/complaints/{complaint_id}/timeline",
        "/complaints/lookup",
        "/reports/complaints",
        "/complaints/{complaint_id}/survey",
        "/complaints/{complaint_id}/resolve",
    ):
        assert path in paths, path
    lookup_params = {p["name"] for p in paths["/complaints/lookup"]["get"]["parameters"]}
    assert {"phone", "tracking_number", "customer_id", "number"} <= lookup_params
    post_params = {p["name"] for p in paths["/complaints"]["post"]["parameters"]}
    assert "Idempotency-Key" in post_params


def test_timeline_entries_document_their_message_key(tmp_path):
    """Clients that translate find the key and parameters of the service's texts in the contract."""
    app = create_app(ComplaintsSettings(database_url=f"sqlite:///{tmp_path / 'x.db'}"), start_background=False)
    schemas = app.openapi()["components"]["schemas"]
    for name in ("TimelineEntryOut", "CustomerTimelineEntryOut"):
        assert {"body", "message_key", "message_params"} <= set(schemas[name]["properties"]), name
