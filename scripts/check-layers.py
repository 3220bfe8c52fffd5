#!/usr/bin/env python3
"""The layering check of `make check`: which folder of src/ may include which.

Each folder of src/ sits on a layer; a file may include headers of its own folder and of folders
on lower layers, never of a higher layer nor of a sibling on its own layer (siblings stay
independent, so that no include cycle can form between them):

    util  <-  store  <-  crypto, client, net  <-  auth  <-  core  <-  api, notify, stream, sync  <-  server

src/cli/ holds client commands: they include client/ and util/ only. src/server/ holds the
composition roots (`coffer server`, `coffer operator`): on the top layer, they may also include cli/
for the command-line plumbing they share with the client commands (cli/common.h: help, usage hints,
the description that completions are generated from). src/main.c (the command table) may include
anything. A file that breaks a rule today for a stated reason is in EXCEPTIONS below,
with that reason; the check fails on any other back-edge, printing the file, the line and the edge.
An exception that no longer matches an include is reported (a warning: remove it), so that the list
only shrinks as the tree moves.

    python3 scripts/check-layers.py           check; exit 1 on a back-edge
    python3 scripts/check-layers.py --graph   print which folder includes which (with counts)
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")

# The layers, lowest first. A new folder of src/ must be placed here (the check refuses an unknown
# folder). net/ is the outbound HTTP client. provider/ (the systems secrets are synced to) sits
# beside auth/: both are clients of outside systems over net/, and core/ drives them. sync/ (the
# secret-sync worker) sits on core/ beside notify/: a background thread over the domain, as notify is. store/ sits below crypto/: the server keys
# (crypto/serverkey.c) are kept wrapped in the store's meta table, and the store knows no keys.
LAYERS = [
    ["util"],
    ["store"],
    ["crypto", "client", "net"],
    ["auth", "provider"],
    ["core"],
    ["api", "notify", "stream", "sync"],
    ["server"],
]

# Folders with a rule of their own instead of a layer: what each may include besides itself.
SPECIAL = {
    "cli": {"client", "util", "scan"},
    # kube/ is `coffer k8s-operator`: like cli/, a client of Coffer's API (client/), plus the
    # Kubernetes API over its own libcurl calls. It reuses the client commands' option parsing and
    # the secret merge of cli/fetch.h, so that it and `coffer run` agree on which value wins.
    "kube": {"cli", "client", "util"},
    # scan/ is the secret scanner of `coffer scan`: a client-side library (rules, Hyperscan and
    # PCRE2 matching, git history, reports) over util/ only, used by cli/scan.c; it knows
    # nothing of the server, and the server nothing of it.
    "scan": {"util"},
}

# Folders on a layer that may also include a special folder: server/ (the top layer, the composition
# roots) uses cli/common.h for its help and completion description, as every command does.
ALSO = {
    "server": {"cli"},
}

# Files that may include more than their folder's rule allows, each with the reason. Keys are paths
# under src/; values are (the folders the file may include besides its rule, "*" for any, the
# reason). Edit this list as the tree moves: a line that matches no include any more is reported.
EXCEPTIONS = {
    # Real back-edges today, each small but owned by another change:
    "cli/machine_login.c": ({"crypto"},
                            "cf_token_looks_like_client_secret(): the client secret's prefix is "
                            "defined in crypto/token.h, shared with the server"),
    "api/notifications.c": ({"notify"},
                            "threshold parsing, channel checks and a notifier run from "
                            "notify/notify.h"),
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def rank_of(folder):
    for rank, layer in enumerate(LAYERS):
        if folder in layer:
            return rank
    return None


def allowed(folder):
    """The folders a file of folder may include (besides exceptions), or None if folder is unknown."""
    if folder in SPECIAL:
        return SPECIAL[folder] | {folder}
    rank = rank_of(folder)
    if rank is None:
        return None
    lower = {f for layer in LAYERS[:rank] for f in layer}
    return lower | {folder} | ALSO.get(folder, set())


def source_files():
    for dirpath, dirnames, filenames in os.walk(SRC):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".c", ".h")):
                yield os.path.relpath(os.path.join(dirpath, name), SRC)


def includes(rel):
    """(line number, target folder) of every project include of rel (a path under src/)."""
    here = os.path.dirname(rel)
    with open(os.path.join(SRC, rel), encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = m.group(1)
            if "/" in target and os.path.exists(os.path.join(SRC, target)):
                yield number, target.split("/")[0], target
            elif os.path.exists(os.path.join(SRC, here, target)):
                yield number, here, target  # beside the file
            # else: a generated header (the build directory) or a system one in quotes


def main(argv):
    graph_only = "--graph" in argv[1:]
    unknown = [a for a in argv[1:] if a != "--graph"]
    if unknown:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    graph = {}
    errors = []
    used_exceptions = set()
    for rel in source_files():
        folder = os.path.dirname(rel) or "."
        for number, target_folder, target in includes(rel):
            if target_folder == "":
                target_folder = "."
            graph.setdefault(folder, {}).setdefault(target_folder, 0)
            graph[folder][target_folder] += 1
            if folder == "." or target_folder == folder:
                continue  # main.c wires everything; a folder includes itself
            ok = allowed(folder)
            if ok is None:
                errors.append("src/%s: folder %s/ has no layer in scripts/check-layers.py" % (rel, folder))
                break
            if target_folder in ok:
                continue
            extra = EXCEPTIONS.get(rel)
            if extra and (target_folder in extra[0] or "*" in extra[0]):
                used_exceptions.add((rel, target_folder))
                continue
            errors.append("src/%s:%d: %s -> %s (#include \"%s\") is a back-edge" %
                          (rel, number, folder, target_folder, target))
    if graph_only:
        print("layers, lowest first: " + "  <-  ".join(", ".join(layer) for layer in LAYERS))
        print("which folder of src/ includes which (number of #include lines; own folder left out):")
        for folder in sorted(graph):
            edges = sorted((t, n) for t, n in graph[folder].items() if t != folder)
            name = "main.c" if folder == "." else folder
            print("  %-7s -> %s" % (name, ", ".join("%s %d" % e for e in edges) or "(nothing)"))
        return 0
    for rel, (folders, reason) in sorted(EXCEPTIONS.items()):
        stale = [t for t in sorted(folders) if t != "*" and (rel, t) not in used_exceptions]
        if not os.path.exists(os.path.join(SRC, rel)):
            stale = ["*"]
        for target_folder in stale:
            print("check-layers: warning: the exception %s -> %s matches no include any more: remove "
                  "it from scripts/check-layers.py" % (rel, target_folder))
    for e in errors:
        print(e)
    if errors:
        print("check-layers: %d problem(s); the rules are at the top of scripts/check-layers.py" % len(errors))
        return 1
    print("check-layers: no back-edge (%d files, %d exceptions listed in scripts/check-layers.py)" %
          (sum(1 for _ in source_files()), len(EXCEPTIONS)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
