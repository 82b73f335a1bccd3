"""`make run` seeds demo data into a fresh installation: a transient refusal is retried, a failure never stops the services."""
import demo_seed
import devrun
import httpx


async def test_a_put_answered_409_or_503_is_retried_until_it_succeeds():
    answers = iter([409, 503, 200])
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(next(answers), json={})

    async with httpx.AsyncClient(base_url="http://complaints", transport=httpx.MockTransport(handler)) as client:
        await demo_seed._put(client, "/teams/transport", {"name": "Transport"})
    assert seen == ["/teams/transport"] * 3


async def test_a_put_refused_for_bad_input_is_not_retried():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(422, json={})

    async with httpx.AsyncClient(base_url="http://complaints", transport=httpx.MockTransport(handler)) as client:
        try:
            await demo_seed._put(client, "/teams/transport", {"name": "Transport"})
        except httpx.HTTPStatusError as exc:
            assert exc.response.status_code == 422
        else:
            raise AssertionError("a 422 must surface")
    assert len(seen) == 1


def test_a_failed_seeding_is_one_line_and_not_an_exception(monkeypatch):
    async def empty(urls):
        return True

    async def broken(urls, bootstrap):
        raise httpx.ConnectError("connection refused\nmore detail")

    monkeypatch.setattr(demo_seed, "installation_is_empty", empty)
    monkeypatch.setattr(demo_seed, "seed", broken)
    monkeypatch.delenv("CRM_DEMO", raising=False)
    line = devrun.seed_demo_if_empty([], "127.0.0.1:1")
    assert line.startswith("seeding FAILED (ConnectError: connection refused)") and "\n" not in line
