from pathlib import Path

from crm_common.events.topics import TOPICS

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"


def test_events_doc_lists_every_topic_and_event_type():
    text = DOC.read_text()
    for topic, types in TOPICS.items():
        assert f"`{topic}`" in text, topic
        for event_type in types:
            assert event_type in text, event_type
