#!/usr/bin/env python3
"""Renders a crate's public API from rustdoc JSON as sorted lines, one per item, impl or
signature, so a committed copy (crates/backstop/api.txt) can be diffed in CI.

Usage: api.py target/doc/backstop.json > listing.txt

What is listed: every public item reachable from the crate root (modules, structs with their
public fields, enums with their variants, traits with their items, functions, constants, type
aliases), every method of inherent impls, every trait impl of the crate's own (with its
associated types) and the auto traits (Send, Sync, Unpin, UnwindSafe, RefUnwindSafe) of each
type. Left out: #[doc(hidden)] items (rustdoc leaves them out), blanket impls such as
`impl<T> From<T> for T` (they follow from the trait's crate, not from ours) and docs.
Signatures are rendered from the JSON here, so the exact spelling is this script's, but any
change to a signature changes its line.
"""

import json
import sys

AUTO_TRAITS = {"Send", "Sync", "Unpin", "UnwindSafe", "RefUnwindSafe"}


class Api:
    def __init__(self, doc):
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.crate = doc["index"][str(doc["root"])]["name"]
        self.lines = set()
        self.seen_impls = set()
        # Local items by the public path they are reachable at (not their private module).
        self.public_paths = {}

    def item(self, id_):
        return self.index.get(str(id_))

    # ---- types -------------------------------------------------------------------------

    def path_name(self, p):
        """A resolved path, named by its canonical path when rustdoc knows it."""
        public = self.public_paths.get(str(p.get("id")))
        summary = self.paths.get(str(p.get("id")))
        if public:
            name = public
        elif summary:
            name = "::".join(summary["path"])
        else:
            name = p["path"]
        return name + self.generic_args(p.get("args"))

    def generic_args(self, args):
        if not args:
            return ""
        if "angle_bracketed" in args:
            ab = args["angle_bracketed"]
            parts = [self.generic_arg(a) for a in ab.get("args", [])]
            parts += [self.constraint(c) for c in ab.get("constraints", [])]
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in args:
            pz = args["parenthesized"]
            out = "(" + ", ".join(self.ty(t) for t in pz["inputs"]) + ")"
            if pz.get("output"):
                out += " -> " + self.ty(pz["output"])
            return out
        return "(..)"

    def generic_arg(self, a):
        if isinstance(a, str):
            return "_" if a == "infer" else a
        if "lifetime" in a:
            return a["lifetime"]
        if "type" in a:
            return self.ty(a["type"])
        if "const" in a:
            return a["const"].get("expr", "_")
        return "?"

    def constraint(self, c):
        binding = c.get("binding", {})
        if "equality" in binding:
            eq = binding["equality"]
            value = self.ty(eq["type"]) if "type" in eq else eq.get("constant", {}).get("expr", "?")
            return f"{c['name']}{self.generic_args(c.get('args'))} = {value}"
        if "constraint" in binding:
            return f"{c['name']}: {self.bounds(binding['constraint'])}"
        return c.get("name", "?")

    def ty(self, t):
        if t is None:
            return "()"
        if isinstance(t, str):
            return "_" if t == "infer" else t
        (kind, v), = t.items()
        if kind == "resolved_path":
            return self.path_name(v)
        if kind == "generic":
            return v
        if kind == "primitive":
            return v
        if kind == "tuple":
            return "(" + ", ".join(self.ty(x) for x in v) + ("," if len(v) == 1 else "") + ")"
        if kind == "slice":
            return "[" + self.ty(v) + "]"
        if kind == "array":
            return f"[{self.ty(v['type'])}; {v['len']}]"
        if kind == "borrowed_ref":
            life = v["lifetime"] + " " if v.get("lifetime") else ""
            mut = "mut " if v["is_mutable"] else ""
            return f"&{life}{mut}{self.ty(v['type'])}"
        if kind == "raw_pointer":
            return ("*mut " if v["is_mutable"] else "*const ") + self.ty(v["type"])
        if kind == "dyn_trait":
            parts = [self.poly_trait(p) for p in v["traits"]]
            if v.get("lifetime"):
                parts.append(v["lifetime"])
            return "dyn " + " + ".join(parts)
        if kind == "impl_trait":
            return "impl " + self.bounds(v)
        if kind == "function_pointer":
            sig = v["sig"]
            inputs = ", ".join(self.ty(x[1]) for x in sig["inputs"])
            out = " -> " + self.ty(sig["output"]) if sig.get("output") else ""
            return f"fn({inputs}){out}"
        if kind == "qualified_path":
            trait = self.path_name(v["trait"]) if v.get("trait") else None
            self_ty = self.ty(v["self_type"])
            base = f"<{self_ty} as {trait}>" if trait else self_ty
            return f"{base}::{v['name']}{self.generic_args(v.get('args'))}"
        return f"?{kind}"

    def poly_trait(self, p):
        hrtb = self.hrtb(p.get("generic_params"))
        return hrtb + self.path_name(p["trait"])

    def hrtb(self, params):
        if not params:
            return ""
        return "for<" + ", ".join(self.param(g) for g in params) + "> "

    def bounds(self, bounds):
        out = []
        for b in bounds:
            if "trait_bound" in b:
                tb = b["trait_bound"]
                modifier = {"maybe": "?", "maybe_const": "~const "}.get(tb.get("modifier"), "")
                out.append(modifier + self.hrtb(tb.get("generic_params")) + self.path_name(tb["trait"]))
            elif "outlives" in b:
                out.append(b["outlives"])
            elif "use" in b:
                out.append("use<" + ", ".join(str(x) for x in b["use"]) + ">")
        return " + ".join(out)

    # ---- generics ----------------------------------------------------------------------

    def param(self, g):
        kind = g["kind"]
        if "lifetime" in kind:
            outlives = kind["lifetime"].get("outlives") or []
            return g["name"] + (": " + " + ".join(outlives) if outlives else "")
        if "type" in kind:
            t = kind["type"]
            out = g["name"]
            if t.get("bounds"):
                out += ": " + self.bounds(t["bounds"])
            if t.get("default"):
                out += " = " + self.ty(t["default"])
            return out
        if "const" in kind:
            c = kind["const"]
            return f"const {g['name']}: {self.ty(c['type'])}"
        return g["name"]

    def generics(self, generics):
        params = [g for g in generics.get("params", []) if not self.synthetic(g)]
        return "<" + ", ".join(self.param(g) for g in params) + ">" if params else ""

    @staticmethod
    def synthetic(g):
        return g["kind"].get("type", {}).get("is_synthetic", False)

    def where_clause(self, generics):
        preds = []
        for p in generics.get("where_predicates", []):
            if "bound_predicate" in p:
                bp = p["bound_predicate"]
                preds.append(
                    self.hrtb(bp.get("generic_params")) + f"{self.ty(bp['type'])}: {self.bounds(bp['bounds'])}"
                )
            elif "lifetime_predicate" in p:
                lp = p["lifetime_predicate"]
                preds.append(f"{lp['lifetime']}: {' + '.join(lp['outlives'])}")
            elif "eq_predicate" in p:
                ep = p["eq_predicate"]
                preds.append(f"{self.ty(ep['lhs'])} = {self.ty(ep['rhs'])}")
        return " where " + ", ".join(preds) if preds else ""

    # ---- items -------------------------------------------------------------------------

    def fn_sig(self, name, f):
        h = f["header"]
        quals = "".join(
            q for q, on in (("const ", h["is_const"]), ("async ", h["is_async"]), ("unsafe ", h["is_unsafe"])) if on
        )
        args = []
        for arg_name, t in f["sig"]["inputs"]:
            if arg_name == "self":
                if t == {"generic": "Self"}:
                    args.append("self")
                    continue
                br = t.get("borrowed_ref") if isinstance(t, dict) else None
                if br and br["type"] == {"generic": "Self"}:
                    life = br["lifetime"] + " " if br.get("lifetime") else ""
                    args.append(f"&{life}{'mut ' if br['is_mutable'] else ''}self")
                    continue
            args.append(f"{arg_name}: {self.ty(t)}")
        out = self.ty(f["sig"]["output"]) if f["sig"].get("output") else None
        ret = f" -> {out}" if out else ""
        return f"{quals}fn {name}{self.generics(f['generics'])}({', '.join(args)}){ret}{self.where_clause(f['generics'])}"

    def add(self, line):
        self.lines.add(line)

    def walk(self, id_, prefix):
        it = self.item(id_)
        if it is None or it.get("visibility") != "public":
            return
        (kind, v), = it["inner"].items()
        name = it.get("name")
        path = f"{prefix}::{name}" if prefix else name
        if kind == "module":
            self.add(f"pub mod {path}")
            for child in v["items"]:
                self.walk(child, path)
        elif kind == "use":
            target = v.get("id")
            if target is not None and self.item(target) is not None:
                self.walk_as(target, prefix, v["name"])
            else:
                self.add(f"pub use {prefix}::{v['name']} = {v['source']}")
        elif kind == "struct":
            self.add(f"pub struct {path}{self.generics(v['generics'])}{self.where_clause(v['generics'])}")
            sk = v["kind"]
            if isinstance(sk, dict) and "plain" in sk:
                for fid in sk["plain"]["fields"]:
                    f = self.item(fid)
                    if f and f.get("visibility") == "public":
                        self.add(f"pub {path}::{f['name']}: {self.ty(f['inner']['struct_field'])}")
                if sk["plain"]["has_stripped_fields"]:
                    self.add(f"{path}: private fields")
            elif isinstance(sk, dict) and "tuple" in sk:
                fields = []
                for fid in sk["tuple"]:
                    f = self.item(fid) if fid is not None else None
                    fields.append(f"pub {self.ty(f['inner']['struct_field'])}" if f and f.get("visibility") == "public" else "_")
                self.add(f"pub struct {path}({', '.join(fields)})")
            self.impls(path, v["impls"])
        elif kind == "enum":
            self.add(f"pub enum {path}{self.generics(v['generics'])}{self.where_clause(v['generics'])}")
            for vid in v["variants"]:
                var = self.item(vid)
                vk = var["inner"]["variant"]["kind"]
                if vk == "plain":
                    self.add(f"{path}::{var['name']}")
                elif "tuple" in vk:
                    types = [self.ty(self.item(f)["inner"]["struct_field"]) if f is not None else "_" for f in vk["tuple"]]
                    self.add(f"{path}::{var['name']}({', '.join(types)})")
                elif "struct" in vk:
                    fields = [self.item(f) for f in vk["struct"]["fields"]]
                    body = ", ".join(f"{f['name']}: {self.ty(f['inner']['struct_field'])}" for f in fields)
                    self.add(f"{path}::{var['name']} {{ {body} }}")
            if v.get("has_stripped_variants"):
                self.add(f"{path}: hidden variants")
            self.impls(path, v["impls"])
        elif kind == "union":
            self.add(f"pub union {path}{self.generics(v['generics'])}")
            self.impls(path, v["impls"])
        elif kind == "trait":
            supers = f": {self.bounds(v['bounds'])}" if v.get("bounds") else ""
            quals = ("unsafe " if v["is_unsafe"] else "") + ("auto " if v["is_auto"] else "")
            self.add(f"pub {quals}trait {path}{self.generics(v['generics'])}{supers}{self.where_clause(v['generics'])}")
            for tid in v["items"]:
                self.trait_item(path, self.item(tid))
            for iid in v.get("implementations", []):
                self.impl(iid)
        elif kind == "function":
            self.add(f"pub {self.fn_sig(path, v)}")
        elif kind == "constant":
            self.add(f"pub const {path}: {self.ty(v['type'])}")
        elif kind == "static":
            self.add(f"pub static {'mut ' if v.get('is_mutable') else ''}{path}: {self.ty(v['type'])}")
        elif kind == "type_alias":
            self.add(f"pub type {path}{self.generics(v['generics'])} = {self.ty(v['type'])}")
        elif kind == "macro":
            self.add(f"macro {path}")
        else:
            self.add(f"pub {kind} {path}")

    def collect(self, id_, prefix):
        """First pass: the public path of every local item reachable from the root."""
        it = self.item(id_)
        if it is None or it.get("visibility") != "public":
            return
        (kind, v), = it["inner"].items()
        if kind == "use":
            target = v.get("id")
            if target is not None and self.item(target) is not None:
                self.record(target, f"{prefix}::{v['name']}")
                if self.item(target)["inner"].get("module"):
                    for child in self.item(target)["inner"]["module"]["items"]:
                        self.collect(child, f"{prefix}::{v['name']}")
            return
        path = f"{prefix}::{it['name']}"
        self.record(id_, path)
        if kind == "module":
            for child in v["items"]:
                self.collect(child, path)

    def record(self, id_, path):
        known = self.public_paths.get(str(id_))
        # Shortest first, then alphabetical: stable when an item is reachable twice.
        if known is None or (len(path), path) < (len(known), known):
            self.public_paths[str(id_)] = path

    def walk_as(self, target, prefix, name):
        it = dict(self.item(target))
        it["name"] = name
        it["visibility"] = "public"
        key = f"__use_{target}_{prefix}_{name}"
        self.index[key] = it
        self.walk(key, prefix)

    def trait_item(self, path, it):
        (kind, v), = it["inner"].items()
        if kind == "function":
            default = " (provided)" if v["has_body"] else ""
            self.add(f"{path}::{self.fn_sig(it['name'], v)}{default}")
        elif kind == "assoc_type":
            bounds = f": {self.bounds(v['bounds'])}" if v.get("bounds") else ""
            default = f" = {self.ty(v['type'])}" if v.get("type") else ""
            self.add(f"{path}::type {it['name']}{self.generics(v['generics'])}{bounds}{default}")
        elif kind == "assoc_const":
            self.add(f"{path}::const {it['name']}: {self.ty(v['type'])}")

    def impls(self, path, impl_ids):
        for iid in impl_ids:
            self.impl(iid, path)

    def impl(self, iid, owner=None):
        it = self.item(iid)
        if it is None or iid in self.seen_impls:
            return
        v = it["inner"]["impl"]
        if v.get("blanket_impl") is not None:
            return
        trait = v.get("trait")
        if v["is_synthetic"] and (trait is None or trait["path"] not in AUTO_TRAITS):
            return
        self.seen_impls.add(iid)
        for_ty = self.ty(v["for"])
        head = f"impl{self.generics(v['generics'])} "
        where = self.where_clause(v["generics"])
        if trait is None:
            for mid in v["items"]:
                m = self.item(mid)
                if m is None or m.get("visibility") != "public":
                    continue
                (kind, mv), = m["inner"].items()
                if kind == "function":
                    self.add(f"{head}{for_ty}{where} :: pub {self.fn_sig(m['name'], mv)}")
                elif kind == "constant":
                    self.add(f"{head}{for_ty}{where} :: pub const {m['name']}: {self.ty(mv['type'])}")
            return
        neg = "!" if v.get("is_negative") else ""
        unsafe = "unsafe " if v.get("is_unsafe") else ""
        line = f"{unsafe}{head}{neg}{self.path_name(trait)} for {for_ty}{where}"
        self.add(line)
        for mid in v["items"]:
            m = self.item(mid)
            if m is None:
                continue
            (kind, mv), = m["inner"].items()
            if kind == "assoc_type":
                self.add(f"{line} :: type {m['name']} = {self.ty(mv.get('type'))}")
            elif kind == "assoc_const":
                self.add(f"{line} :: const {m['name']}: {self.ty(mv['type'])}")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    api = Api(doc)
    root = doc["index"][str(doc["root"])]
    for child in root["inner"]["module"]["items"]:
        api.collect(child, api.crate)
    for child in root["inner"]["module"]["items"]:
        api.walk(child, api.crate)
    api.lines.add(f"pub mod {api.crate}")
    for line in sorted(api.lines):
        print(line)


if __name__ == "__main__":
    main()
