"""What the soak reads from the daemon: its process in /proc, and its /metrics."""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

LATENESS = "e911_check_lateness_seconds"


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` (VmRSS), in MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def load_average() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


@dataclass
class Scrape:
    """The samples of one /metrics answer that the soak uses."""

    values: dict[str, float] = field(default_factory=dict)
    lateness: list[tuple[float, float]] = field(default_factory=list)

    def get(self, name: str) -> float:
        return self.values.get(name, 0.0)


def parse(text: str) -> Scrape:
    """Unlabelled samples by name, labelled ones summed, and the lateness buckets."""
    scrape = Scrape()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{LATENESS}_bucket":
                scrape.lateness.append((float(sample.labels["le"]), sample.value))
                continue
            scrape.values[sample.name] = scrape.values.get(sample.name, 0.0) + sample.value
    return scrape


def scrape(port: int) -> Scrape:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return parse(response.read().decode())
