#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Run a CNI conflist the way libcni (containerd, CRI-O, podman) runs it.

    cnichain.py ADD|CHECK|DEL --conflist FILE --cache FILE [--caps JSON] [--log DIR]

The CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH variables
are taken from the environment and passed on. Per the CNI specification:

  ADD    each plugin in order; the first gets no prevResult, every later one
         the result of the one before; the last result is written to --cache
         and printed.
  CHECK  each plugin in order, each given the cached result as prevResult.
  DEL    each plugin in reverse order, each given the cached result (if any);
         the cache is removed afterwards.

runtimeConfig holds, for each capability a plugin declares true in its
"capabilities", the value of that key in --caps (a JSON object), as libcni
builds it. --known-failure TYPE:REGEX lets a CHECK failure of plugin TYPE
whose message matches REGEX count as passed (said on stderr): for a known
bug of a reference plugin, not of the plugin under test. --log DIR keeps each plugin's stdin and stdout as
DIR/<command>.<index>.<type>.{in,out}.json so a test can check what each
plugin was given.

Exit 0 when every plugin succeeded; 1 when one failed: stderr names its index
and type, stdout is its error object. 2 for a usage error.
"""
import argparse
import json
import os
import re
import subprocess
import sys


def find_plugin(kind, path):
    for d in path.split(":"):
        p = os.path.join(d, kind)
        if d and os.access(p, os.X_OK):
            return p
    return None


def plugin_conf(net, plugin, caps, prev):
    conf = dict(plugin)
    conf["name"] = net["name"]
    conf["cniVersion"] = net["cniVersion"]
    conf.pop("capabilities", None)
    rc = {k: caps[k] for k, on in plugin.get("capabilities", {}).items() if on and k in caps}
    if rc:
        conf["runtimeConfig"] = rc
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def run(cmd, index, plugin, conf, log, known=()):
    exe = find_plugin(plugin["type"], os.environ.get("CNI_PATH", ""))
    if exe is None:
        print(f"plugins[{index}] ({plugin['type']}): not found in CNI_PATH", file=sys.stderr)
        return None, 1
    env = dict(os.environ, CNI_COMMAND=cmd)
    data = json.dumps(conf)
    p = subprocess.run([exe], input=data, env=env, capture_output=True, text=True)
    if log:
        base = os.path.join(log, f"{cmd}.{index}.{plugin['type']}")
        with open(base + ".in.json", "w") as f:
            f.write(data)
        with open(base + ".out.json", "w") as f:
            f.write(p.stdout)
    if p.returncode != 0:
        for kind, pattern in known:
            if kind == plugin["type"] and re.search(pattern, p.stdout):
                print(f"plugins[{index}] ({kind}): known failure, counted as passed: "
                      f"{p.stdout.strip()}", file=sys.stderr)
                return None, 0
        sys.stdout.write(p.stdout)
        print(f"plugins[{index}] ({plugin['type']}) failed ({cmd.lower()}): exit "
              f"{p.returncode}: {p.stdout.strip() or p.stderr.strip()}", file=sys.stderr)
        return None, 1
    if cmd == "ADD":
        try:
            return json.loads(p.stdout), 0
        except ValueError:
            print(f"plugins[{index}] ({plugin['type']}): ADD printed no JSON result",
                  file=sys.stderr)
            return None, 1
    return None, 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["ADD", "CHECK", "DEL"])
    ap.add_argument("--conflist", required=True)
    ap.add_argument("--cache", required=True, help="the ADD's result, as libcni caches it")
    ap.add_argument("--caps", default="{}", help="capability arguments (JSON object)")
    ap.add_argument("--log", help="directory for each plugin's stdin and stdout")
    ap.add_argument("--known-failure", action="append", default=[], metavar="TYPE:REGEX",
                    help="CHECK: a failure of plugin TYPE matching REGEX counts as passed")
    a = ap.parse_args()
    with open(a.conflist) as f:
        net = json.load(f)
    caps = json.loads(a.caps)
    known = [tuple(k.split(":", 1)) for k in a.known_failure if ":" in k]
    plugins = net["plugins"]

    if a.command == "ADD":
        prev = None
        for i, pl in enumerate(plugins):
            prev, rc = run("ADD", i, pl, plugin_conf(net, pl, caps, prev), a.log)
            if rc:
                return rc
        with open(a.cache, "w") as f:
            json.dump(prev, f)
        print(json.dumps(prev))
        return 0

    cached = None
    if os.path.exists(a.cache):
        with open(a.cache) as f:
            cached = json.load(f)
    if a.command == "CHECK":
        if cached is None:
            print(f"CHECK: no cached result in {a.cache}", file=sys.stderr)
            return 1
        for i, pl in enumerate(plugins):
            _, rc = run("CHECK", i, pl, plugin_conf(net, pl, caps, cached), a.log, known)
            if rc:
                return rc
        return 0

    for i in reversed(range(len(plugins))):
        pl = plugins[i]
        _, rc = run("DEL", i, pl, plugin_conf(net, pl, caps, cached), a.log)
        if rc:
            return rc
    if os.path.exists(a.cache):
        os.unlink(a.cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
