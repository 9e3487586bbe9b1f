"""A minimal Streamlit client speaking the app's own websocket protocol (loopback only).

It does what a browser tab does, without rendering: opens a session on ``/_stcore/stream``,
asks for script runs (``BackMsg.rerun_script`` with the query string, the page and widget
values; a fragment id for a fragment rerun), uploads files the way ``st.file_uploader``
does (``file_urls_request`` then an HTTP PUT with the XSRF token), and collects what the
script drew until ``script_finished``. Used by the load test so that ten sessions measure
the server on a 2-core machine, not ten Chromium renderers competing with it.
"""

from __future__ import annotations

import http.cookiejar
import time
import urllib.request
import uuid
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect


@dataclass
class Run:
    """What one script run drew."""

    seconds: float = 0.0
    query_string: str | None = None
    widgets: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (id, fragment)
    texts: list[str] = field(default_factory=list)  # st.text, markdown, captions
    alerts: list[str] = field(default_factory=list)  # st.error/warning/info/success bodies
    exceptions: list[str] = field(default_factory=list)
    slider_values: dict[str, list[float]] = field(default_factory=dict)
    spinners: list[str] = field(default_factory=list)  # shown only while a cache misses
    status: int = -1


class Client:
    """One browser-less Streamlit session on ``url`` (http://127.0.0.1:PORT)."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        assert url.startswith(("http://127.0.0.1", "http://localhost")), "loopback only"
        self.url, self.timeout = url, timeout
        jar = http.cookiejar.CookieJar()
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        self.http.open(url + "/_stcore/health", timeout=30).read()  # sets the XSRF cookie
        self.xsrf = next((c.value for c in jar if c.name == "_streamlit_xsrf"), "")
        self.cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        self.ws = connect(url.replace("http://", "ws://") + "/_stcore/stream",
                          subprotocols=["streamlit", self.xsrf] if self.xsrf else ["streamlit"],
                          additional_headers={"Cookie": self.cookie, "Origin": url},
                          max_size=None, open_timeout=30)
        self.session_id = ""

    def close(self) -> None:
        self.ws.close()

    def _recv(self) -> ForwardMsg:
        msg = ForwardMsg()
        msg.ParseFromString(self.ws.recv(timeout=self.timeout))
        return msg

    def run(self, query: str, page: str, widgets: list | None = None, fragment: str = "") -> Run:
        """Ask for a run and collect its output until it finishes.

        Args:
            widgets: ``(id, kind, value)`` with kind ``double_array``, ``string`` or ``file``
                (value: a ``FileUploaderState``).
        """
        back = BackMsg()
        cs = back.rerun_script
        cs.query_string, cs.page_name = query, page
        if fragment:
            cs.fragment_id = fragment
        for wid, kind, value in widgets or []:
            w = cs.widget_states.widgets.add()
            w.id = wid
            if kind == "double_array":
                w.double_array_value.data.extend(value)
            elif kind == "string":
                w.string_value = value
            elif kind == "file":
                w.file_uploader_state_value.CopyFrom(value)
        out = Run(query_string=query)  # unchanged unless the script sets another
        t0 = time.perf_counter()
        self.ws.send(back.SerializeToString())
        while True:
            f = self._recv()
            kind = f.WhichOneof("type")
            if kind == "new_session":
                self.session_id = f.new_session.initialize.session_id or self.session_id
            elif kind == "page_info_changed":
                out.query_string = f.page_info_changed.query_string
            elif kind == "delta" and f.delta.WhichOneof("type") == "new_element":
                el = f.delta.new_element
                t = el.WhichOneof("type")
                if t == "exception":
                    out.exceptions.append(el.exception.message)
                elif t == "alert":
                    out.alerts.append(el.alert.body)
                elif t == "text":
                    out.texts.append(el.text.body)
                elif t == "markdown":
                    out.texts.append(el.markdown.body)
                elif t == "spinner":
                    out.spinners.append(el.spinner.text)
                elif t in ("slider", "text_area", "file_uploader", "selectbox", "button"):
                    w = getattr(el, t)
                    out.widgets[w.label] = (w.id, f.delta.fragment_id)
                    if t == "slider":
                        out.slider_values[w.label] = list(w.value)
            elif kind == "script_finished":
                out.seconds = time.perf_counter() - t0
                out.status = int(f.script_finished)
                return out

    def upload(self, name: str, data: bytes, mime: str = "image/png"):
        """Upload a file as ``st.file_uploader`` does; return the widget's new state."""
        from streamlit.proto.Common_pb2 import FileUploaderState

        back = BackMsg()
        req = back.file_urls_request
        req.request_id = uuid.uuid4().hex
        req.file_names.append(name)
        req.session_id = self.session_id
        self.ws.send(back.SerializeToString())
        while True:
            f = self._recv()
            if f.WhichOneof("type") == "file_urls_response" and f.file_urls_response.response_id == req.request_id:
                urls = f.file_urls_response.file_urls[0]
                break
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        upload_url = urls.upload_url if urls.upload_url.startswith("http") else self.url + urls.upload_url
        assert upload_url.startswith(self.url), upload_url
        put = urllib.request.Request(upload_url, data=body, method="PUT", headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "X-Xsrftoken": self.xsrf,
            "Cookie": self.cookie, "Origin": self.url})
        with self.http.open(put, timeout=60) as r:
            assert r.status in (200, 204), r.status
        state = FileUploaderState()
        info = state.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(data), urls.file_id
        info.file_urls.CopyFrom(urls)
        return state
