"""The Vercel function: the reference API as a Flask (WSGI) app exposed as ``app``.

Vercel's Python runtime imports ``api/index.py``, which re-exports ``app`` from here;
``vercel.json`` rewrites every path to that one function. This module only translates:
a Flask request becomes the core's neutral ``Request``, ``Api.handle`` (the sync API
over ``UpstashCache``) answers, and its ``Response`` becomes a Flask response.

Flask's router is bypassed on purpose (a ``before_request`` hook answers everything):
its slash-merging redirects, HTML 404 pages and automatic ``OPTIONS``/405 answers would
otherwise reply instead of the API's JSON errors.

Paths are percent-decoded exactly once, by the core, so ``%25`` in a key stays a literal
``%``: Vercel's runtime hands the raw request target to WSGI as ``PATH_INFO``; other
servers (gunicorn, the Werkzeug server and test client) keep it in ``RAW_URI`` or
``REQUEST_URI``.
"""

from __future__ import annotations

import contextlib

from flask import Flask
from flask import Response as FlaskResponse
from flask import request as flask_request

from continuum.app import Api, ApiError, ApiSettings, Request
from continuum.app import Response as ApiResponse
from continuum.errors import CacheError

__all__ = ["app"]

# No static folder: Vercel serves static files itself, the API answers every path, and
# the static route would only cost a rule compiled on every cold start.
app = Flask(__name__, static_folder=None)


def _get_api() -> Api:
    """The instance's ``Api``, built from the environment at import and then reused; a
    setting that failed at import fails again here, per request, as a JSON error."""
    global _api
    if _api is None:
        _api = Api()
    return _api


def _init() -> Api | None:
    """Build the ``Api``, its client and HTTP pool while the instance starts (httpx is
    imported then): the first request needs them all, so it finds them ready. A bad
    setting is left for the requests to report (see :func:`answer`), never raised at
    import, where the runtime would only show a crash."""
    try:
        api = Api()
    except CacheError:
        return None
    # On failure the first request that needs the cache reports it, as any later one does.
    with contextlib.suppress(CacheError):
        api.cache.prepare()
    return api


_api = _init()


def _raw_path() -> str:
    environ = flask_request.environ
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target:
        return str(target).split("?", 1)[0] or "/"
    # WSGI carries PATH_INFO as latin-1 text standing for the raw bytes.
    raw: str = environ.get("PATH_INFO", "") or "/"
    return raw.encode("latin-1").decode("utf-8", errors="replace")


def _to_neutral(max_body: int) -> Request:
    length = flask_request.content_length
    if length is not None and length > max_body:
        raise ApiError("payload_too_large", f"the body is larger than {max_body} bytes")
    headers = list(flask_request.headers.items())
    return Request.build(
        flask_request.method,
        _raw_path(),
        query_string=flask_request.environ.get("QUERY_STRING", ""),
        headers=headers,
        body=_read_body(max_body),
        request_id=flask_request.headers.get("x-vercel-id", ""),
        raw_path=True,
    )


def _read_body(max_body: int) -> bytes:
    """The body, read no further than ``max_body`` bytes: a chunked upload declares no
    length, so the declared-length check above cannot refuse it before it is read."""
    stream = flask_request.stream
    chunks: list[bytes] = []
    size = 0
    while size <= max_body:
        chunk = stream.read(max_body + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise ApiError("payload_too_large", f"the body is larger than {max_body} bytes")


def _to_flask(response: ApiResponse) -> FlaskResponse:
    return FlaskResponse(
        response.body, status=response.status, headers=list(response.headers.items())
    )


@app.before_request
def answer() -> FlaskResponse:
    """Answer every request with the reference API; never raises into the runtime."""
    try:
        api = _get_api()
    except CacheError as exc:
        failure = ApiError("internal", f"the function is misconfigured: {exc}")
        return _to_flask(Api(ApiSettings()).error_response(failure))
    try:
        neutral = _to_neutral(api.settings.max_body)
    except ApiError as error:
        return _to_flask(api.error_response(error))
    return _to_flask(api.handle(neutral))


@app.errorhandler(Exception)
def unexpected(exc: Exception) -> FlaskResponse:
    """The API promises not to raise; should it, answer JSON rather than Flask's HTML page."""
    app.logger.error("unexpected error while answering", exc_info=exc)
    failure = ApiError("internal", f"unexpected error ({type(exc).__name__})")
    return _to_flask((_api or Api(ApiSettings())).error_response(failure))
