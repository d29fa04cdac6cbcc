"""A client of hpo's REST API (`api/`), for the CLI's `--server` mode.

Methods return the JSON documents the server sends (dicts shaped like `api.models`).
Any error answer raises `ApiError` carrying the status and the server's field/message
problems, so the CLI prints the same lines it prints for a local spec error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import httpx

API_PREFIX = "/api/v1"


class ApiError(Exception):
    """The server refused a request (`status` ≥ 400) or could not be reached (`status` 0).

    `problems` are ``(field, message)`` pairs from the `ErrorPublic` body.
    """

    def __init__(self, status: int, problems: list[tuple[str, str]]) -> None:
        self.status = status
        self.problems = problems
        super().__init__("\n".join(f"{f}: {m}" if f else m for f, m in problems))

    @property
    def client_error(self) -> bool:
        """A 4xx: the request was wrong (the CLI exits 2); otherwise the server failed."""
        return 400 <= self.status < 500


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event: `id` is None for the synthetic end-of-study event."""

    id: int | None
    kind: str
    data: dict[str, Any]


class Client:
    """HTTP access to one hpo server at `base_url` (``http://host:port``), optionally with
    a bearer `token`. Usable as a context manager; not thread-safe (one httpx client)."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + API_PREFIX, headers=headers, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, [("", f"cannot reach {self._http.base_url}: {exc}")]) from None
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # -- studies -------------------------------------------------------------------------

    def submit(
        self, spec_text: str, *, yaml: bool, strategy: str | None = None, trials: int | None = None
    ) -> dict[str, Any]:
        """Queue a study from spec text (YAML or JSON); returns the StudyPublic."""
        params = {k: v for k, v in (("strategy", strategy), ("trials", trials)) if v is not None}
        content_type = "application/yaml" if yaml else "application/json"
        return dict(
            self._json(
                "POST",
                "/studies",
                content=spec_text.encode(),
                headers={"Content-Type": content_type},
                params=params,
            )
        )

    def study(self, study_id: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/studies/{study_id}"))

    def studies(self, *, limit: int = 50, offset: int = 0, **filters: Any) -> dict[str, Any]:
        params = {"limit": limit, "offset": offset}
        params.update({k: v for k, v in filters.items() if v is not None})
        return dict(self._json("GET", "/studies", params=params))

    def cancel(self, study_id: int) -> dict[str, Any]:
        return dict(self._json("POST", f"/studies/{study_id}/cancel"))

    def delete(self, study_id: int) -> None:
        self._request("DELETE", f"/studies/{study_id}")

    def best(self, study_id: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/studies/{study_id}/best"))

    def pareto(self, study_id: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/studies/{study_id}/pareto"))

    def export(self, study_id: int, fmt: str, stream: IO[str]) -> None:
        """Write the study's CSV or JSON export to `stream` as it arrives."""
        try:
            with self._http.stream(
                "GET", f"/studies/{study_id}/export", params={"format": fmt}
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_of(response)
                for chunk in response.iter_text():
                    stream.write(chunk)
        except httpx.HTTPError as exc:
            raise ApiError(0, [("", f"cannot reach {self._http.base_url}: {exc}")]) from None

    # -- trials --------------------------------------------------------------------------

    def trials(self, study_id: int, *, limit: int = 100, offset: int = 0, **filters: Any) -> Any:
        params = {"limit": limit, "offset": offset}
        params.update({k: v for k, v in filters.items() if v is not None})
        return self._json("GET", f"/studies/{study_id}/trials", params=params)

    def trial(self, study_id: int, number: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/studies/{study_id}/trials/{number}"))

    # -- events --------------------------------------------------------------------------

    def events(self, study_id: int, *, after: int | None = None) -> Iterator[ServerEvent]:
        """The study's events from the server-sent stream, until its terminal event.

        A dropped connection is resumed from the last event received (`Last-Event-ID`);
        the stream ends when the server ends it, after the terminal event.
        """
        last = after
        while True:
            headers = {"Last-Event-ID": str(last)} if last is not None else {}
            try:
                with self._http.stream(
                    "GET",
                    f"/studies/{study_id}/events",
                    headers=headers,
                    timeout=httpx.Timeout(self._http.timeout.connect, read=60.0),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _error_of(response)
                    for event in _parse_sse(response.iter_lines()):
                        if event.id is not None:
                            last = event.id
                        yield event
                    return
            except (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError):
                continue  # resume after the last event received
            except httpx.HTTPError as exc:
                raise ApiError(0, [("", f"cannot reach {self._http.base_url}: {exc}")]) from None


def _parse_sse(lines: Iterator[str]) -> Iterator[ServerEvent]:
    """Server-sent events from text lines (comments and `retry:` ignored)."""
    event_id: int | None = None
    kind = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield ServerEvent(event_id, kind, json.loads("\n".join(data)))
            event_id, kind, data = None, "message", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id" and value.isdigit():
            event_id = int(value)
        elif field == "event":
            kind = value
        elif field == "data":
            data.append(value)


def _error_of(response: httpx.Response) -> ApiError:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list) and all(isinstance(d, dict) for d in detail):
        problems = [(str(d.get("field", "")), str(d.get("message", ""))) for d in detail]
    elif isinstance(detail, str):
        problems = [("", detail)]
    else:
        problems = [("", f"HTTP {response.status_code}: {response.text[:200]}")]
    return ApiError(response.status_code, problems)
