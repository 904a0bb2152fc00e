#!/usr/bin/python3
"""Write the golden prompts for internal/chattmpl.

Each case in internal/chattmpl/testdata/cases.json (a named template, or an
inline "source") is rendered with Python
Jinja2 set up the way transformers' apply_chat_template sets it up:

  * an ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True
    and the loopcontrols extension (plus a pass-through {% generation %} tag);
  * the tojson filter replaced by json.dumps(x, ensure_ascii=False, indent,
    separators, sort_keys) with those keyword defaults;
  * the globals raise_exception(msg) (raises TemplateError) and
    strftime_now(fmt) (here on a fixed clock taken from the case's "now");
  * variables messages, tools (None when absent), documents=None,
    add_generation_prompt, the non-empty special tokens of the config
    (bos/eos/pad/unk; a token may be an AddedToken object with "content"),
    then the case's extra keyword arguments.

The output of a case NAME goes to testdata/golden/NAME.txt (exact UTF-8 bytes)
or, when the template raises, its message goes to testdata/golden/NAME.err.

Run from the repository root with Debian's interpreter (python3-jinja2):
    /usr/bin/python3 tools/chattmpl_golden.py          # rewrite goldens
    /usr/bin/python3 tools/chattmpl_golden.py --check  # compare only
transformers itself is not needed; the environment is rebuilt from its facts.
"""

import argparse
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

TESTDATA = os.path.join("internal", "chattmpl", "testdata")
SPECIAL_NAMES = ("bos_token", "eos_token", "pad_token", "unk_token")


class GenerationTag(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %} renders its body unchanged.

    transformers uses the tag to find assistant tokens; the text is unaffected.
    """

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.Scope(body).set_lineno(lineno)


def hf_tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def make_env(now):
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True,
        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = hf_tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: now.strftime(fmt)
    return env


def token_text(tok):
    if isinstance(tok, dict):
        return tok.get("content")
    return tok


def load_template(spec):
    """Return (source, specials) for one entry of cases.json "templates"."""
    if "config" in spec:
        with open(os.path.join(TESTDATA, spec["config"]), encoding="utf-8") as f:
            cfg = json.load(f)
        tmpl = cfg["chat_template"]
        if isinstance(tmpl, list):
            tmpl = {t["name"]: t["template"] for t in tmpl}["default"]
        specials = {n: token_text(cfg.get(n)) for n in SPECIAL_NAMES}
    else:
        with open(os.path.join(TESTDATA, spec["file"]), encoding="utf-8", newline="") as f:
            tmpl = f.read()
        specials = {n: spec.get(n) for n in SPECIAL_NAMES}
    # HF's special_tokens_map only holds tokens that are set.
    return tmpl, {k: v for k, v in specials.items() if v}


def render_case(case, templates):
    if "source" in case:  # an inline template without special tokens
        source, specials = case["source"], {}
    else:
        source, specials = templates[case["template"]]
    now = datetime.datetime.fromisoformat(case.get("now", "2025-01-02T03:04:05"))
    compiled = make_env(now).from_string(source)
    kwargs = dict(specials)
    kwargs.update(case.get("extra", {}))
    try:
        out = compiled.render(
            messages=case["messages"],
            tools=case.get("tools"),
            documents=None,
            add_generation_prompt=case.get("add_generation_prompt", False),
            **kwargs)
    except jinja2.exceptions.TemplateError as e:
        return ".err", str(e)
    return ".txt", out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    args = ap.parse_args()

    with open(os.path.join(TESTDATA, "cases.json"), encoding="utf-8") as f:
        spec = json.load(f)
    templates = {name: load_template(t) for name, t in spec["templates"].items()}
    outdir = os.path.join(TESTDATA, "golden")
    os.makedirs(outdir, exist_ok=True)

    bad = 0
    for case in spec["cases"]:
        ext, text = render_case(case, templates)
        path = os.path.join(outdir, case["name"] + ext)
        data = text.encode("utf-8")
        if args.check:
            try:
                with open(path, "rb") as f:
                    same = f.read() == data
            except FileNotFoundError:
                same = False
            if not same:
                bad += 1
                print("differs:", path)
            continue
        for stale in (".txt", ".err"):
            if stale != ext and os.path.exists(os.path.join(outdir, case["name"] + stale)):
                os.remove(os.path.join(outdir, case["name"] + stale))
        with open(path, "wb") as f:
            f.write(data)
        print("wrote", path, len(data), "bytes")
    if not args.check:
        with open(os.path.join(outdir, "GENERATOR"), "w", encoding="utf-8") as f:
            f.write("tools/chattmpl_golden.py with jinja2 %s on Python %s\n"
                    % (jinja2.__version__, sys.version.split()[0]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
