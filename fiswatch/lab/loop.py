"""An asyncio event loop in one daemon thread, shared by the lab's proxies and DNS server."""
import asyncio
import threading
from typing import Any, Callable, Optional


class ProxyLoop:
    """An asyncio loop running in one daemon thread, shared by many proxies."""

    def __init__(self, name: str = "fiswatch-proxy-loop") -> None:
        self._name = name
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        self.start()
        assert self._loop is not None
        return self._loop

    @property
    def running(self) -> bool:
        """Started and not stopped (without starting it, unlike `loop`)."""
        return self._loop is not None

    def start(self) -> "ProxyLoop":
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()
                loop.close()

            self._loop = loop
            self._thread = threading.Thread(target=run, name=self._name, daemon=True)
            self._thread.start()
            ready.wait(10)
            return self

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def call(self, func: Callable[..., Any], *args: Any, timeout: float = 15.0) -> Any:
        """Run a coroutine function or plain function on the loop and return its result."""
        if self.in_loop_thread():
            raise RuntimeError("ProxyLoop.call() from the loop's own thread would deadlock")
        loop = self.loop

        async def wrapper() -> Any:
            result = func(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(timeout)

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            if threading.current_thread() is not thread:
                thread.join(10)
