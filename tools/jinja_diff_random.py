#!/usr/bin/env python3
"""jinja_diff_random.py — random templates (expressions with operators, filters and tests over values of
every type; for, if and set statements) rendered by `cake template` and by Jinja2 set up as HF's renderer
(tools/jinja_ref.py): outputs must be identical, and a template Jinja2 refuses must fail.
usage: python3 tools/jinja_diff_random.py build/cake [SEED] [COUNT]   (needs python3-jinja2)"""
import copy, json, os, random, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jinja_ref import make_env  # noqa: E402
env = make_env()
V = {"s": " Hi, Wörld ", "t": "a,b,,c", "n": 7, "m": -3, "f": 2.5, "g": 1.0, "l": [3, "x", 1.5, None, True], "e": [],
     "d": {"k": "v", "n": 2, "z": [1, {"q": "w"}]}, "b": False, "u": None, "msgs": [{"role": "user", "content": "c1"}, {"role": "assistant", "content": "c2"}]}
atoms = ["s", "t", "n", "m", "f", "g", "l", "e", "d", "b", "u", "msgs", "x", "1", "0", "-2", "2.0", "0.5", "'ab'", "''", "'a b'", "none", "true", "false", "[1, 2]", "{'a': 1}", "(1, 'x')", "d.k", "d['n']", "l[0]", "l[-1]", "msgs[0].role", "msgs[1]['content']", "d.z[1].q", "s[1:4]", "l[::-1]", "t.split(',')", "s.strip()", "s | trim", "l | length", "d | items | list", "msgs | map(attribute='role') | list",
         "s.split()", "s.split(' ', 1)", "t.rsplit(',', 1)", "s.lstrip(' H')", "s.startswith(' H')", "t.endswith(('c', 'x'))",
         "s.replace('l', 'L', 1)", "s.find('W')", "s.count('l')", "s.upper()", "s.title()", "'-'.join(['a', 'b'])",
         "d.get('k')", "d.get('nope', 5)", "d.keys() | list", "d.values() | list", "d.items() | list",
         "msgs | selectattr('role', 'equalto', 'user') | list", "msgs | rejectattr('role', 'in', ['user']) | list",
         "l | select('number') | list", "l | reject('none') | list", "msgs | map(attribute='content') | join('/')",
         "range(3) | list", "namespace(a=1).a", "dict(a=2)", "'%s-%d' % ('a', 3)", "'{}|{}'.format(1, 'b')",
         "l | tojson(indent=2)", "d | tojson(separators=(',', ':'))", "s[::-1]", "s[-3:]", "l[1:4:2]", "s * 2",
         "[1, 2] + [3]", "n ** 2", "2 ** 0.5", "n // 2", "m % 5", "f // 1", "-(0.0)", "-3", "0.5", "-2.5"]
binops = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and", "or"]
filters = ["length", "string", "upper", "lower", "trim", "first", "last", "list", "tojson", "int", "float", "abs", "join(',')", "default('D')", "default('D', true)", "reverse | list", "sort | list", "unique | list", "sum", "min", "max", "capitalize", "title", "round", "dictsort", "items | list", "replace('a', 'Z')", "indent(2)", "wordcount", "e", "count", "select | list", "reject | list", "map('string') | list", "tojson(indent=1)", "tojson(sort_keys=true)"]
tests = ["defined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence", "boolean", "true", "false", "odd", "even", "undefined", "lower", "upper"]
def expr(depth=0):
    r = random.random()
    if depth > 2 or r < 0.3: return random.choice(atoms)
    if r < 0.55: return "(%s %s %s)" % (expr(depth+1), random.choice(binops), expr(depth+1))
    if r < 0.75: return "(%s | %s)" % (expr(depth+1), random.choice(filters))
    if r < 0.85: return "(%s is %s%s)" % (expr(depth+1), random.choice(["", "not "]), random.choice(tests))
    if r < 0.92: return "(%s if %s else %s)" % (expr(depth+1), expr(depth+1), expr(depth+1))
    return "(not %s)" % expr(depth+1)
def ws_template():
    """Text, newlines, spaces and tabs around tags with random whitespace control: the lexer's corners."""
    bits = []
    texts = ["", " ", "  ", "\t", "\n", "\n\n", " \n ", "x", " y ", "\n  z", "\u00a0", "\r\n"]
    for _ in range(random.randint(3, 9)):
        bits.append(random.choice(texts))
        l, r = random.choice(["", "-", "+"]), random.choice(["", "-", "+"])
        kind = random.random()
        if kind < 0.3:
            bits.append("{%" + l + " if n %" + r + "}" + random.choice(texts) + "{%" + random.choice(["", "-"]) + " endif %" + random.choice(["", "-"]) + "}")
        elif kind < 0.5:
            bits.append("{{" + random.choice(["", "-"]) + " n " + random.choice(["", "-"]) + "}}")
        elif kind < 0.65:
            bits.append("{#" + l.replace("+", "") + " c #" + r.replace("+", "") + "}")
        elif kind < 0.8:
            bits.append("{%" + l + " for x in l[:2] %" + r + "}" + random.choice(texts) + "{{ x }}" + random.choice(texts) + "{%" + random.choice(["", "-"]) + " endfor %" + random.choice(["", "-", "+"]) + "}")
        else:
            bits.append("{%" + l + " set q = 1 %" + r + "}")
    bits.append(random.choice(texts))
    return "".join(bits)


def flow_template():
    """Loops, loop variables, break/continue, scoping of set, namespaces, macros and call blocks."""
    parts = ["{% set ns = namespace(c=0, s='') %}{% set top = 'T' %}"]
    for _ in range(random.randint(2, 4)):
        r = random.random()
        if r < 0.35:
            cond = random.choice(["x is number", "x is none", "loop.index > 2", "x", "not loop.first"])
            ctl = random.choice(["{% break %}", "{% continue %}", "{% set top = x %}", "{% set ns.c = ns.c + 1 %}",
                                 "{% set ns.s = ns.s ~ loop.index0 %}", ""])
            filt = random.choice(["", " if x is not none", " if loop is undefined"])
            parts.append("{%% for x in %s%s %%}{%% if %s %%}%s{%% endif %%}<{{ x }}{{ loop.revindex }}{{ loop.length }}"
                         "{{ loop.previtem is defined }}>{%% else %%}E{%% endfor %%}" % (
                             random.choice(["l", "e", "msgs", "d", "'ab'", "range(4)", "l | reverse"]), filt, cond, ctl))
        elif r < 0.6:
            parts.append("{%% macro mm(a, b=%s) %%}[{{ a }}|{{ b }}|{{ top }}{%% if caller is defined %%}|{{ caller() }}{%% endif %%}]"
                         "{%% endmacro %%}{{ mm(%s) }}{{ mm(1, b=%s) }}" % (expr(2), expr(2), expr(2)))
        elif r < 0.75:
            parts.append("{%% macro cm(p) %%}({{ caller(p) }}){%% endmacro %%}{%% call(v) cm(%s) %%}{{ v }}:{{ top }}{%% endcall %%}" % expr(2))
        elif r < 0.9:
            parts.append("{%% for a in [1, 2] %%}{%% for b in %s %%}{{ a }}{{ b }}{{ loop.index }}{%% if b == 'x' %%}{%% break %%}{%% endif %%}"
                         "{%% endfor %%}{{ loop.index }}{%% endfor %%}" % random.choice(["l", "'xy'", "[]"]))
        else:
            parts.append("{%% set blk %%}{{ %s }}{%% endset %%}[{{ blk }}]" % expr(1))
    parts.append("{{ ns.c }}{{ ns.s }}{{ top }}")
    return "".join(parts)


def stmt():
    r = random.random()
    if r < 0.5: return "{{ %s }}" % expr()
    if r < 0.7: return "{%% for x in %s %%}[{{ loop.index }}:{{ x }}]{%% endfor %%}" % expr(1)
    if r < 0.85: return "{%% if %s %%}Y{%% else %%}N{%% endif %%}" % expr()
    return "{%% set v = %s %%}{{ v }}" % expr()
CAKE = sys.argv[1]
random.seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
N = int(sys.argv[3]) if len(sys.argv) > 3 else 300
TMP = tempfile.mkdtemp()
cases = []
for i in range(N):
    src = [lambda: "|".join(stmt() for _ in range(3)), ws_template, flow_template][i % 3]()
    try: want = env.from_string(src).render(**copy.deepcopy(V)); err = None
    except Exception as e: want = None; err = "%s: %s" % (type(e).__name__, e)
    cases.append((src, want, err))
open(os.path.join(TMP, 'e.json'), 'w').write('[]')
bad = 0
for src, want, err in cases:
    open(os.path.join(TMP, 'r.jinja'), 'w').write(src)
    r = subprocess.run([CAKE, 'template', '--chat-template-file', os.path.join(TMP, 'r.jinja'), '--messages', os.path.join(TMP, 'e.json'), '--kwargs', json.dumps(V)], capture_output=True)
    if want is None:
        ok = r.returncode != 0
    else:
        ok = r.returncode == 0 and r.stdout.decode('utf-8', 'replace') == want
    if not ok:
        bad += 1
        if bad <= 15: print("SRC:", src, "\n  want:", repr(want) if want is not None else err, "\n  got: ", r.stdout.decode()[:300] if r.returncode == 0 else r.stderr.decode()[:300])
print("mismatches: %d/%d" % (bad, len(cases)))
sys.exit(1 if bad else 0)
