"""What `make demo` shows, as a picture: replicas and ready pods over time and
the latency of requests sent through the proxy, with the cold start marked.
Samples are recorded while the demo runs (Timeline) and plotted with gnuplot
(Debian's gnuplot-nox) into a PNG.

  python3 -m harness.timeline DATA_DIR OUT.png   # re-plots saved samples
"""
import os
import shutil
import subprocess
import sys
import threading
import time


class Timeline:
    """Samples replicas(): (replicas, ready pods) every `every` seconds on a
    thread, and takes latency samples and marks from the caller."""

    def __init__(self, replicas, every=0.25):
        self.t0 = time.monotonic()
        self.replicas = replicas
        self.every = every
        self.scale = []    # (t, replicas, ready)
        self.latency = []  # (t, ms, cold)
        self.marks = []    # (t, label)
        self.held = None   # (t_from, t_to) of the cold start
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)

    def now(self):
        return time.monotonic() - self.t0

    def start(self):
        self.th.start()

    def _run(self):
        while not self.stop_ev.wait(self.every):
            try:
                n, ready = self.replicas()
            except Exception:  # noqa: BLE001 - a missed sample is fine
                continue
            with self.lock:
                self.scale.append((self.now(), n, ready))

    def stop(self):
        self.stop_ev.set()
        if self.th.is_alive():
            self.th.join(5)

    def mark(self, label, t=None):
        with self.lock:
            self.marks.append((self.now() if t is None else t, label))

    def sample(self, t_sent, seconds, cold=False):
        with self.lock:
            self.latency.append((t_sent, seconds * 1000.0, 1 if cold else 0))

    def probe(self, send, interval=0.2):
        """Starts a thread that calls send() (one request; returns seconds)
        every `interval` until the returned event is set."""
        stop = threading.Event()

        def run():
            while not stop.is_set():
                t = self.now()
                try:
                    self.sample(t, send())
                except Exception:  # noqa: BLE001 - a failed probe shows as a gap
                    pass
                stop.wait(interval)
        threading.Thread(target=run, daemon=True).start()
        return stop

    def save(self, d):
        os.makedirs(d, exist_ok=True)
        with self.lock:
            with open(os.path.join(d, "scale.dat"), "w") as f:
                f.write("# t_s replicas ready_pods\n")
                for r in self.scale:
                    f.write("%.3f %d %d\n" % r)
            with open(os.path.join(d, "latency.dat"), "w") as f:
                f.write("# t_s latency_ms cold\n")
                for r in self.latency:
                    f.write("%.3f %.3f %d\n" % r)
            with open(os.path.join(d, "marks.dat"), "w") as f:
                for t, label in self.marks:
                    f.write("%.3f %s\n" % (t, label))
            if self.held:
                with open(os.path.join(d, "held.dat"), "w") as f:
                    f.write("%.3f %.3f\n" % self.held)


def plot(d, png, title="zerowire demo: scale from zero, burst, back to zero"):
    """Plots the samples saved in directory d into png with gnuplot. Returns
    png's path; raises RuntimeError when gnuplot is missing or fails."""
    gp = shutil.which("gnuplot")
    if not gp:
        raise RuntimeError("gnuplot is missing (apt-get install gnuplot-nox; scripts/setup.sh does)")
    held = None
    if os.path.exists(os.path.join(d, "held.dat")):
        with open(os.path.join(d, "held.dat")) as f:
            held = [float(x) for x in f.read().split()]
    marks = []
    if os.path.exists(os.path.join(d, "marks.dat")):
        with open(os.path.join(d, "marks.dat")) as f:
            for line in f:
                t, _, label = line.strip().partition(" ")
                marks.append((float(t), label))
    xmax = 1.0
    for name in ("scale.dat", "latency.dat"):
        with open(os.path.join(d, name)) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    xmax = max(xmax, float(line.split()[0]))
    lines = [
        'set terminal pngcairo size 1100,700 font "sans,10"',
        "set xrange [0:%.3f]" % (xmax * 1.02),
        'set output "%s"' % png,
        "set multiplot layout 2,1 title \"%s\"" % title,
        "set grid",
        "set xlabel 'time (s)'",
        "set key below",
        "set lmargin 10",
        "set rmargin 3",
    ]
    shade = []
    if held:
        shade = ['set object 1 rect from %.3f, graph 0 to %.3f, graph 1 fc rgb "#ffd8d8" fs solid 0.6 noborder behind'
                 % (held[0], held[1])]
    # Marks less than a second apart share one line and one label.
    merged = []
    for t, label in sorted(marks):
        if merged and t - merged[-1][0] < 1.0:
            merged[-1] = (merged[-1][0], merged[-1][1] + ", " + label)
        else:
            merged.append((t, label))
    arrows, labels = [], []
    for i, (t, label) in enumerate(merged):
        arrows.append('set arrow %d from %.3f, graph 0 to %.3f, graph 1 nohead dt 2 lc rgb "#888888"'
                      % (i + 10, t, t))
        labels.append('set label %d "%s" at %.3f, graph 0.97 rotate by 90 right offset 1,0 font ",8" '
                      'tc rgb "#555555"' % (i + 10, label.replace('"', "'"), t))
    lines += shade + arrows + labels + [
        "set ylabel 'replicas'",
        "set yrange [0:*]",
        "set ytics 1",
        'plot "%s/scale.dat" using 1:2 with steps lw 2 lc rgb "#1f77b4" title "replicas (Deployment spec)", \\'
        % d,
        '     "%s/scale.dat" using 1:3 with steps lw 2 dt 3 lc rgb "#2ca02c" title "ready pods"' % d,
        "unset label",
        "unset ytics",
        "set ytics auto",
        "set ylabel 'request latency (ms)'",
        "set logscale y",
        "set yrange [*:*]",
        'plot "%s/latency.dat" using 1:($3==0 ? $2 : 1/0) with points pt 7 ps 0.5 lc rgb "#1f77b4" '
        'title "requests through the proxy (one every 0.2 s)", \\' % d,
        '     "%s/latency.dat" using 1:($3==1 ? $2 : 1/0) with points pt 9 ps 2.5 lc rgb "#d62728" '
        'title "first request: held during the cold start"' % d,
        "unset multiplot",
    ]
    script = "\n".join(lines) + "\n"
    r = subprocess.run([gp], input=script, capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not os.path.exists(png):
        raise RuntimeError("gnuplot failed: %s" % r.stderr.strip()[:500])
    return png


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(plot(sys.argv[1], sys.argv[2]))
