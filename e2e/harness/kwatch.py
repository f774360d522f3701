"""A small list-then-watch loop for the stand-ins (Python side only; the C
client is lib/kube*). Keeps a dict of objects and calls on_change(kind,
obj_or_None, key) for every change; survives apiserver restarts (reconnect with
capped backoff) and 410 Gone (relist, reporting deletions of objects that
vanished meanwhile)."""

import json
import socket
import threading


class Watcher:
    """Watches `path` (a collection URL such as /apis/apps/v1/deployments or
    /apis/apps/v1/namespaces/ns/deployments) of cluster; objects by
    (namespace, name) in self.objects."""

    def __init__(self, cluster, path, on_change, name="watch"):
        self.cluster = cluster
        self.path = path
        self.on_change = on_change
        self.name = name
        self.objects = {}
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._session = None
        self._resp = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        r = self._resp
        if r is not None:
            # r.close() does not wake a thread blocked in recv(): shut the socket down.
            sock = getattr(getattr(r.raw, "_connection", None), "sock", None)
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(10)
        if self._session is not None:
            self._session.close()

    @staticmethod
    def key(obj):
        md = obj.get("metadata", {})
        return (md.get("namespace", ""), md.get("name"))

    def _relist(self):
        lst = self._session.get(self.cluster.server + self.path, timeout=30)
        if lst.status_code == 404:
            return None  # resource not served (yet)
        lst.raise_for_status()
        doc = lst.json()
        fresh = {self.key(o): o for o in doc.get("items", [])}
        gone = [k for k in self.objects if k not in fresh]
        for k in gone:
            del self.objects[k]
            self.on_change("DELETED", None, k)
        for k, o in fresh.items():
            old = self.objects.get(k)
            self.objects[k] = o
            if old is None or old["metadata"].get("resourceVersion") != o["metadata"].get("resourceVersion"):
                self.on_change("ADDED" if old is None else "MODIFIED", o, k)
        self.synced.set()
        return doc["metadata"]["resourceVersion"]

    def _run(self):
        backoff = 0.1
        rv = None
        while not self._stop.is_set():
            try:
                if self._session is None:
                    self._session = self.cluster.new_session()
                if rv is None:
                    rv = self._relist()
                    if rv is None:
                        self._stop.wait(1.0)
                        continue
                r = self._session.get(self.cluster.server + self.path,
                                      params={"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true",
                                              "timeoutSeconds": "60"},
                                      stream=True, timeout=(5, 90))
                self._resp = r
                if r.status_code == 410:
                    rv = None
                    continue
                r.raise_for_status()
                backoff = 0.1
                for line in r.iter_lines():
                    if self._stop.is_set():
                        break
                    if not line:
                        continue
                    ev = json.loads(line)
                    t, obj = ev.get("type"), ev.get("object", {})
                    if t == "ERROR":
                        rv = None  # 410 Gone or other: relist
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if t == "BOOKMARK":
                        continue
                    k = self.key(obj)
                    if t == "DELETED":
                        self.objects.pop(k, None)
                        self.on_change("DELETED", None, k)
                    else:
                        self.objects[k] = obj
                        self.on_change(t, obj, k)
                r.close()
            except Exception:  # noqa: BLE001 - connection errors of every layer
                if self._stop.is_set():
                    break
                # apiserver restarting or connection dropped: reconnect, relist
                # (a restarted watch cache may not know the old resourceVersion).
                rv = None
                if self._session is not None:
                    self._session.close()
                    self._session = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                self._resp = None
