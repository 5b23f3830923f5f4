"""The shared HTTP machinery: token caching and refresh, retries, Retry-After, backoff caps, safe logs."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import threading
from collections.abc import Callable

import httpx
import pytest

from hub.connectors.http import (
    DEFAULT_TIMEOUT,
    ApiClient,
    OAuth2ClientCredentials,
    RetryPolicy,
    StaticBearer,
    classify_status,
    parse_json,
    parse_retry_after,
)
from hub.errors import DataValidationError, PermanentError, ThrottledError, TransientError

TOKEN_URL = "https://login.example.test/oauth2/token"
BASE = "https://api.example.test"
SECRET = "s3cr3t-client-secret"


class Vendor:
    """A hand-written vendor: a token endpoint and one resource whose answers the test scripts."""

    def __init__(
        self, answers: list[Callable[[httpx.Request], httpx.Response]] | None = None, expires_in=None
    ):
        self.answers = list(answers or [])
        self.expires_in = expires_in
        self.token_calls = 0
        self.api_calls: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            with self.lock:
                self.token_calls += 1
                number = self.token_calls
            body = {"access_token": f"token-{number}", "token_type": "Bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return httpx.Response(200, json=body)
        with self.lock:
            self.api_calls.append(request)
            answer = self.answers.pop(0) if self.answers else None
        if answer is None:
            return httpx.Response(200, json={"ok": True})
        return answer(request)


def status(code: int, **kwargs) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(code, **kwargs)


def raise_(exc_type: type[Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=request)

    return answer


def oauth_client(vendor: Vendor, retry: RetryPolicy, clock: Callable[[], float] | None = None) -> ApiClient:
    http = httpx.Client(transport=httpx.MockTransport(vendor))
    kwargs = {"clock": clock} if clock else {}
    auth = OAuth2ClientCredentials(
        http, token_url=TOKEN_URL, client_id="cid", client_secret=SECRET, system="vendor", **kwargs
    )
    return ApiClient(http, system="vendor", base_url=BASE, auth=auth, retry=retry)


# ------------------------------------------------------------------------------------------- token cache


def test_given_many_requests_when_token_has_no_expiry_then_one_token_call_serves_them_all(retry):
    vendor = Vendor()
    api = oauth_client(vendor, retry)

    for _ in range(5):
        api.request("GET", "/things/{id}", path_params={"id": "1"})

    assert vendor.token_calls == 1
    assert {r.headers["Authorization"] for r in vendor.api_calls} == {"Bearer token-1"}


def test_given_concurrent_threads_when_they_all_need_a_token_then_it_is_fetched_once(retry):
    vendor = Vendor()
    api = oauth_client(vendor, retry)
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        api.request("GET", "/things")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert vendor.token_calls == 1
    assert len(vendor.api_calls) == 8


def test_given_an_expired_session_when_the_vendor_answers_401_then_token_is_refreshed_once_and_call_replayed(
    retry, sleeps
):
    vendor = Vendor([status(401, json=[{"errorCode": "INVALID_SESSION_ID"}])])
    api = oauth_client(vendor, retry)

    response = api.request("GET", "/things")

    assert response.status_code == 200
    assert vendor.token_calls == 2
    assert [r.headers["Authorization"] for r in vendor.api_calls] == ["Bearer token-1", "Bearer token-2"]
    assert sleeps == []


def test_given_a_token_rejected_twice_when_calling_then_refresh_happens_exactly_once_and_error_is_permanent(
    retry,
):
    vendor = Vendor([status(401), status(401), status(401)])
    api = oauth_client(vendor, retry)

    with pytest.raises(PermanentError):
        api.request("GET", "/things")

    assert vendor.token_calls == 2
    assert len(vendor.api_calls) == 2


def test_given_a_token_with_expires_in_when_it_nears_expiry_then_it_is_refreshed_before_the_vendor_refuses_it(
    retry,
):
    now = [1000.0]
    vendor = Vendor(expires_in=3600)
    api = oauth_client(vendor, retry, clock=lambda: now[0])

    api.request("GET", "/things")
    now[0] += 3600 - 61  # just before the refresh margin (60 s)
    api.request("GET", "/things")
    calls_before_margin = vendor.token_calls
    now[0] += 2  # inside the margin: refresh proactively
    api.request("GET", "/things")

    assert calls_before_margin == 1
    assert vendor.token_calls == 2
    assert vendor.api_calls[-1].headers["Authorization"] == "Bearer token-2"


def test_given_bad_client_credentials_when_token_is_requested_then_permanent_error_without_retry(
    retry, sleeps
):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_client", "error_description": "bad"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    auth = OAuth2ClientCredentials(
        http, token_url=TOKEN_URL, client_id="cid", client_secret=SECRET, system="v"
    )
    api = ApiClient(http, system="v", base_url=BASE, auth=auth, retry=retry)

    with pytest.raises(PermanentError) as caught:
        api.request("GET", "/things")

    assert caught.value.code == "invalid_client"
    assert sleeps == []


def test_given_a_static_token_when_the_vendor_answers_401_then_permanent_error_without_replay(retry):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(401)

    api = ApiClient(
        httpx.Client(transport=httpx.MockTransport(handler)),
        system="v",
        base_url=BASE,
        auth=StaticBearer("tok"),
        retry=retry,
    )

    with pytest.raises(PermanentError):
        api.request("GET", "/things")
    assert len(calls) == 1


# ------------------------------------------------------------------------------------------------ retries


def test_given_retry_after_seconds_when_throttled_then_the_client_waits_exactly_that_long(retry, sleeps):
    vendor = Vendor([status(429, headers={"Retry-After": "7"})])
    api = oauth_client(vendor, retry)

    assert api.request("GET", "/things").status_code == 200
    assert sleeps == [7.0]


def test_given_retry_after_as_http_date_when_parsed_then_it_is_the_seconds_until_that_date():
    now = dt.datetime(2026, 11, 2, 10, 0, 0, tzinfo=dt.UTC)
    header = email.utils.format_datetime(now + dt.timedelta(seconds=42), usegmt=True)

    assert parse_retry_after(header, now=lambda: now) == 42.0
    assert parse_retry_after("Mon, 02 Nov 2026 09:00:00 GMT", now=lambda: now) == 0.0  # past: no wait
    assert parse_retry_after("soon", now=lambda: now) is None
    assert parse_retry_after(None) is None


def test_given_retry_after_http_date_when_throttled_then_the_client_waits_until_that_date(retry, sleeps):
    header = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10), usegmt=True)
    vendor = Vendor([status(429, headers={"Retry-After": header})])
    api = oauth_client(vendor, retry)

    api.request("GET", "/things")

    assert len(sleeps) == 1
    assert 5.0 <= sleeps[0] <= 10.0


def test_given_retry_after_beyond_the_sleep_budget_when_throttled_then_the_error_is_handed_up_with_its_hint(
    retry, sleeps
):
    vendor = Vendor([status(429, headers={"Retry-After": "3600"})])
    api = oauth_client(vendor, retry)

    with pytest.raises(ThrottledError) as caught:
        api.request("GET", "/things")

    assert caught.value.retry_after == 3600.0
    assert sleeps == []
    assert len(vendor.api_calls) == 1


def test_given_persistent_throttling_when_attempts_run_out_then_throttled_error_is_raised(retry, sleeps):
    vendor = Vendor([status(429, headers={"Retry-After": "1"}) for _ in range(5)])
    api = oauth_client(vendor, retry)

    with pytest.raises(ThrottledError) as caught:
        api.request("GET", "/things")

    assert caught.value.system == "vendor"
    assert len(vendor.api_calls) == 3
    assert sleeps == [1.0, 1.0]


def test_given_no_retry_after_when_retrying_then_backoff_is_exponential_and_capped_at_max_delay(sleeps):
    policy = RetryPolicy(
        max_attempts=6, base_delay=1.0, max_delay=3.0, max_total_sleep=100.0, sleep=sleeps, random=lambda: 1.0
    )
    vendor = Vendor([status(503) for _ in range(6)])
    api = oauth_client(vendor, policy)

    with pytest.raises(TransientError):
        api.request("GET", "/things")

    assert sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_given_a_total_sleep_budget_when_backoff_would_exceed_it_then_retries_stop_at_the_budget(sleeps):
    policy = RetryPolicy(
        max_attempts=10, base_delay=1.0, max_delay=8.0, max_total_sleep=5.0, sleep=sleeps, random=lambda: 1.0
    )
    vendor = Vendor([status(500) for _ in range(10)])
    api = oauth_client(vendor, policy)

    with pytest.raises(TransientError):
        api.request("GET", "/things")

    assert sum(sleeps) == pytest.approx(5.0)
    assert sleeps == [1.0, 2.0, 2.0]


def test_given_full_jitter_when_backing_off_then_the_wait_is_a_random_share_of_the_ceiling(sleeps):
    policy = RetryPolicy(max_attempts=3, base_delay=2.0, max_delay=8.0, sleep=sleeps, random=lambda: 0.25)
    vendor = Vendor([status(502), status(502)])
    api = oauth_client(vendor, policy)

    api.request("GET", "/things")

    assert sleeps == [0.5, 1.0]


def test_given_a_read_timeout_on_a_get_when_retrying_then_it_succeeds_and_timeouts_become_transient(retry):
    vendor = Vendor([raise_(httpx.ReadTimeout)])
    api = oauth_client(vendor, retry)
    assert api.request("GET", "/things").status_code == 200

    failing = oauth_client(Vendor([raise_(httpx.ReadTimeout) for _ in range(3)]), retry)
    with pytest.raises(TransientError) as caught:
        failing.request("GET", "/things")
    assert caught.value.code == "ReadTimeout"


def test_given_a_post_when_the_answer_is_lost_then_it_is_not_replayed(retry, sleeps):
    vendor = Vendor([raise_(httpx.ReadTimeout)])
    api = oauth_client(vendor, retry)

    with pytest.raises(TransientError):
        api.request("POST", "/things", json={"a": 1})

    assert len(vendor.api_calls) == 1
    assert sleeps == []


def test_given_a_post_when_the_vendor_answers_5xx_then_it_is_not_replayed(retry):
    vendor = Vendor([status(500)])
    api = oauth_client(vendor, retry)

    with pytest.raises(TransientError):
        api.request("POST", "/things", json={})

    assert len(vendor.api_calls) == 1


def test_given_a_post_when_the_connection_is_refused_or_throttled_then_it_is_replayed(retry):
    vendor = Vendor([raise_(httpx.ConnectError), status(429, headers={"Retry-After": "0"})])
    api = oauth_client(vendor, retry)

    assert api.request("POST", "/things", json={}).status_code == 200
    assert len(vendor.api_calls) == 3


def test_given_a_permanent_answer_when_calling_then_there_is_no_retry(retry, sleeps):
    vendor = Vendor([status(422, json={"errors": []})])
    api = oauth_client(vendor, retry)

    with pytest.raises(DataValidationError):
        api.request("GET", "/things")

    assert len(vendor.api_calls) == 1
    assert sleeps == []


# ----------------------------------------------------------------------------------- timeouts and logs


def test_given_the_client_when_calling_then_connect_and_read_timeouts_are_set_explicitly(retry):
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.extensions["timeout"])
        return httpx.Response(200)

    api = ApiClient(
        httpx.Client(transport=httpx.MockTransport(handler)),
        system="v",
        base_url=BASE,
        auth=StaticBearer("tok"),
        retry=retry,
    )
    api.request("GET", "/things")

    assert seen["connect"] == DEFAULT_TIMEOUT.connect
    assert seen["read"] == DEFAULT_TIMEOUT.read
    assert seen["connect"] is not None and seen["read"] is not None


def test_given_a_call_when_logged_then_only_system_method_path_template_status_attempt_duration_appear(
    retry, caplog
):
    vendor = Vendor([status(401), status(503)])
    api = oauth_client(vendor, retry)

    with caplog.at_level(logging.DEBUG, logger="hub.connectors"):
        api.request("GET", "/people/{id}", path_params={"id": "jane.doe@example.com"}, params={"q": "pii"})

    assert caplog.records
    for record in caplog.records:
        rendered = repr(record.__dict__)
        for secret in (SECRET, "token-1", "token-2", "jane.doe", "pii", "cid"):
            assert secret not in rendered
    api_records = [r for r in caplog.records if getattr(r, "path", None) == "/people/{id}"]
    assert [(r.method, r.status, r.attempt) for r in api_records] == [
        ("GET", 401, 1),
        ("GET", 503, 1),
        ("GET", 200, 2),
    ]
    assert all(isinstance(r.duration_ms, float) for r in api_records)


def test_given_path_params_when_building_the_url_then_they_are_encoded_into_the_template(retry):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200)

    api = ApiClient(
        httpx.Client(transport=httpx.MockTransport(handler)),
        system="v",
        base_url=BASE + "/",
        auth=StaticBearer("tok"),
        retry=retry,
    )
    api.request("GET", "/record/eid:{eid}", path_params={"eid": "a/b c"})

    assert seen == ["/record/eid:a%2Fb%20c"]


def test_given_generic_statuses_when_classified_then_they_follow_the_taxonomy():
    def classify(code: int, headers=None):
        return classify_status(httpx.Response(code, headers=headers or {}), system="v")

    assert classify(204) is None
    assert isinstance(classify(429, {"Retry-After": "3"}), ThrottledError)
    assert classify(429, {"Retry-After": "3"}).retry_after == 3.0
    assert isinstance(classify(500), TransientError)
    assert isinstance(classify(408), TransientError)
    assert isinstance(classify(404), PermanentError) and not isinstance(classify(404), DataValidationError)
    assert isinstance(classify(422), DataValidationError)


def test_given_json_numbers_when_parsed_then_money_is_decimal_not_float():
    body = parse_json(httpx.Response(200, content=b'{"Amount": 0.1, "Quantity": 3}'))
    assert str(body["Amount"]) == "0.1"
    assert body["Quantity"] == 3
