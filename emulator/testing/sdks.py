"""Send the official SDKs' calls to an emulator without the app naming it, as moto's ``mock_aws`` does.

>>> with emulator_sdks("http://127.0.0.1:8080") as sdks:
...     app_code_that_builds_its_own_clients()   # real endpoints, https, real bucket names
...     client = sdks.cos_client()               # or a ready client with the test account

Inside the block, every request an SDK makes to a provider host (``*.aliyuncs.com``,
``*.myqcloud.com``) goes to the emulator instead, over plain HTTP on loopback, with the ``Host`` the
SDK signed kept as it was and (given a namespace) the ``X-Emulator-Namespace`` header added. Other
hosts are left alone. The patches sit at the SDKs' own transport seams:

- aliyunsdkcore (``AcsClient``): the ``send`` of its vendored requests ``Session``
  (aliyunsdkcore/http/http_response.py sends every call through it);
- the Tea client (``alibabacloud_green20180509.client.Client``): ``DaraCore.compose_url``, which both
  its sync and async paths call to turn the signed ``host`` header into a URL
  (darabonba/core.py), and the older ``TeaCore.compose_url`` where present;
- cos-python-sdk-v5 (``CosS3Client``) and the Tea client's sync path: ``requests.Session.send``,
  after the COS signature has been computed over the real host.

Requests the SDKs send to a redirected host ignore proxy settings, so nothing leaves loopback.
The patches are process-wide while the block runs (as moto's are), so a redirect also catches SDK
clients built before it started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..config import AlibabaAccount, Settings, TencentAccount, load
from .client import NAMESPACE_HEADER

__all__ = ["PROVIDER_DOMAINS", "EmulatorSDKs", "TestAccounts", "emulator_sdks"]

#: Hosts whose calls are redirected: Alibaba Cloud's and Tencent Cloud's API domains.
PROVIDER_DOMAINS = ("aliyuncs.com", "myqcloud.com")


@dataclass(frozen=True)
class TestAccounts:
    """The credentials of the emulator's first configured account of each provider."""

    __test__ = False  # not a pytest test class

    access_key_id: str
    access_key_secret: str
    uid: str
    seed: str
    secret_id: str
    secret_key: str
    appid: str
    #: A bucket of the Tencent account (any ``<name>-<APPID>`` is one).
    bucket: str
    region: str = "ap-beijing"

    @classmethod
    def of(cls, settings: Settings) -> TestAccounts:
        # A config without an account of a provider leaves that provider's fields empty.
        ali = settings.alibaba.accounts[0] if settings.alibaba.accounts else AlibabaAccount("", "", "")
        tc = settings.tencent.accounts[0] if settings.tencent.accounts else TencentAccount("", "", "")
        return cls(
            access_key_id=ali.access_key_id,
            access_key_secret=ali.access_key_secret,
            uid=ali.uid,
            seed=ali.seed,
            secret_id=tc.secret_id,
            secret_key=tc.secret_key,
            appid=tc.appid,
            bucket=f"examplebucket-{tc.appid}",
        )


def is_provider_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0].lower().rstrip(".")
    return any(name == d or name.endswith("." + d) for d in PROVIDER_DOMAINS)


class _Redirect:
    """Where redirected calls go, and the rewrite every seam applies."""

    def __init__(self, base_url: str, namespace: str | None) -> None:
        parts = urlsplit(base_url)
        self.scheme, self.netloc = parts.scheme or "http", parts.netloc
        self.namespace = namespace

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit((self.scheme, self.netloc, parts.path, parts.query, ""))

    def tag(self, headers: Any) -> None:
        if self.namespace:
            headers[NAMESPACE_HEADER] = self.namespace

    def prepared(self, request: Any, kwargs: dict[str, Any]) -> None:
        """Rewrite a requests ``PreparedRequest`` bound for a provider host (by its ``Host`` header
        if it has one, as with COS's IP mode, else by its URL) before it is sent."""
        host = request.headers.get("Host") or urlsplit(request.url).netloc
        if not is_provider_host(host):
            return
        request.headers["Host"] = host
        self.tag(request.headers)
        request.url = self.url(request.url)
        kwargs["proxies"] = {}


def _patch(stack: ExitStack, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``make(original)`` until ``stack`` closes."""
    original = owner.__dict__[name]
    setattr(owner, name, make(original))
    stack.callback(setattr, owner, name, original)


def _patch_session_send(stack: ExitStack, session_class: Any, redirect: _Redirect) -> None:
    def make(original: Any) -> Any:
        def send(self: Any, request: Any, **kwargs: Any) -> Any:
            redirect.prepared(request, kwargs)
            return original(self, request, **kwargs)

        return send

    _patch(stack, session_class, "send", make)


def _patch_compose_url(stack: ExitStack, core_class: Any, redirect: _Redirect) -> None:
    def make(original: Any) -> Any:
        compose = original.__func__

        def compose_url(request: Any) -> Any:
            url = compose(request)
            if not is_provider_host(str(request.headers.get("host", ""))):
                return url
            redirect.tag(request.headers)
            return redirect.url(url)

        return staticmethod(compose_url)

    _patch(stack, core_class, "compose_url", make)


def _optional(module: str) -> Any | None:
    try:
        return import_module(module)
    except ImportError:
        return None


@contextmanager
def _redirected(base_url: str, namespace: str | None) -> Iterator[None]:
    redirect = _Redirect(base_url, namespace)
    with ExitStack() as stack:
        if (requests := _optional("requests")) is not None:
            _patch_session_send(stack, requests.Session, redirect)
        if (vendored := _optional("aliyunsdkcore.vendored.requests")) is not None:
            _patch_session_send(stack, vendored.Session, redirect)
        for module, name in (("darabonba.core", "DaraCore"), ("Tea.core", "TeaCore")):
            if (core := _optional(module)) is not None:
                _patch_compose_url(stack, getattr(core, name), redirect)
        yield


class EmulatorSDKs:
    """What ``emulator_sdks`` yields: the emulator's address, the test accounts and ready clients."""

    def __init__(self, url: str, namespace: str | None, accounts: TestAccounts) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.accounts = accounts

    def acs_client(self, region: str = "cn-shanghai") -> Any:
        """An aliyunsdkcore ``AcsClient`` with the Alibaba test account (close ``.session`` when done)."""
        from aliyunsdkcore.client import AcsClient

        return AcsClient(self.accounts.access_key_id, self.accounts.access_key_secret, region)

    def green_client(self, region: str = "cn-shanghai", **config: Any) -> Any:
        """A Tea ``alibabacloud_green20180509.client.Client`` with the Alibaba test account."""
        from alibabacloud_green20180509.client import Client
        from alibabacloud_tea_openapi.models import Config

        return Client(
            Config(
                access_key_id=self.accounts.access_key_id,
                access_key_secret=self.accounts.access_key_secret,
                region_id=region,
                **config,
            )
        )

    def cos_client(self, region: str | None = None, **config: Any) -> Any:
        """A ``CosS3Client`` with the Tencent test account (its bucket: ``accounts.bucket``)."""
        from qcloud_cos import CosConfig, CosS3Client

        conf = CosConfig(
            Region=region or self.accounts.region,
            SecretId=self.accounts.secret_id,
            SecretKey=self.accounts.secret_key,
            **config,
        )
        return CosS3Client(conf, retry=0)


@contextmanager
def emulator_sdks(
    url: str, *, namespace: str | None = None, accounts: TestAccounts | None = None
) -> Iterator[EmulatorSDKs]:
    """Redirect the official SDKs' provider calls to the emulator at ``url`` for the block, tagged
    with ``namespace`` if given; ``accounts`` default to those of the built-in config."""
    if accounts is None:
        accounts = TestAccounts.of(load(env={}))
    with _redirected(url, namespace):
        yield EmulatorSDKs(url, namespace, accounts)
