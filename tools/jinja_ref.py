#!/usr/bin/env python3
"""jinja_ref.py — renders the language cases of tests/data/jinja/cases.json's source list with Jinja2 set
up as HF transformers' chat-template renderer (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loop controls, its tojson, raise_exception, strftime_now) and writes the expected outputs, so the C
interpreter's unit tests compare against Jinja2 itself.
usage: python3 tools/jinja_ref.py > tests/data/jinja/cases.json"""
import json
import sys
from datetime import datetime, timezone

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class AssistantTracker(Extension):
    """HF's {% generation %} ... {% endgeneration %}: the body renders as is."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime(2024, 7, 26, 12, 0, 0, tzinfo=timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


V = {"msgs": [{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Hi ☃"},
              {"role": "assistant", "content": "Hello", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}],
     "d": {"b": 2, "a": 1, "c": [1, 2.5, None, True, "x\"y\n\u00e9\u2028"]},
     "s": "  Hello, World!  ", "n": 7, "f": 2.5, "items": [3, 1, 2], "empty": [], "none": None, "t": True}

CASES = [
    # text and whitespace control (trim_blocks, lstrip_blocks, -, +)
    "a\n  {% if t %}\n  b\n  {% endif %}\nc",
    "a  {%- if t -%}  b  {%- endif -%}  c",
    "x {{- ' y ' -}} z\n",
    "  {%+ if t %}kept{% endif %}\n",
    "{% if t %}\nline\n{%+ endif %}\nend",
    "a{# comment #}\nb\n  {# indented comment #}\nc {#- trimmed -#} d",
    "{% raw %}{{ not evaluated }}{% endraw %}\n{%- raw -%}  x  {%- endraw %}",
    "trailing newline is dropped\n",
    "\u00a0 {% if t %}nbsp and space before a tag at a line start go{% endif %}",
    "two newlines are one\n\n",
    "crlf\r\nlines\r\n",
    # if / elif / else
    "{% if n > 10 %}big{% elif n > 5 %}mid{% else %}small{% endif %}",
    "{% if none %}x{% elif empty %}y{% elif not t %}z{% else %}w{% endif %}",
    "{{ 'yes' if t else 'no' }} {{ 'a' if none }}|{{ (1 if false) is defined }}",
    # for, loop.*, else, filter, break, continue
    "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
    "{% for x in items %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}",
    "{% for x in empty %}x{% else %}none{% endfor %}",
    "{% for x in items %}{% continue %}{% else %}E1{% endfor %}{% for x in items %}{% if x == 2 %}{% break %}{% endif %}{% else %}E2{% endfor %}{% for x in items %}{% if x == 3 %}{% continue %}{% endif %}{% else %}E3{% endfor %}",
    "{% for x in items if x > 1 %}{{ x }}/{{ loop.length }} {% endfor %}",
    "{% for x in items %}{% if x == 1 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for x in items %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for k in d %}{{ k }}{% endfor %}{% for ch in 'héllo' %}[{{ ch }}]{% endfor %}",
    "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}",
    "{% for i in range(3) %}{% for j in range(i) %}{{ i }}{{ j }} {% endfor %}{% endfor %}",
    "{% for m in msgs %}{{ loop.index }}:{{ m.role }}{{ ', ' if not loop.last }}{% endfor %}",
    "{% set x = 1 %}{% for i in items %}{% set x = i %}{% endfor %}{{ x }}",
    # set, block set, namespace, tuple unpacking
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = (3, 4) %}{{ c }}{{ c[1] }}",
    "{% set ns = namespace(found=false, n=0) %}{% for x in items %}{% if x == 1 %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.found }} {{ ns.n }}",
    "{% set body %}\n  inner {{ n }}\n{% endset %}[{{ body }}]",
    "{% set up | upper %}shout{% endset %}{{ up }}",
    # macros and call
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }}",
    "{% macro outer() %}[{{ caller() }}]{% endmacro %}{% call outer() %}inside {{ n }}{% endcall %}",
    "{% macro list(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(v) list(items) %}<{{ v }}>{% endcall %}",
    "{% macro m() %}{{ n }}{% endmacro %}{% set n = 9 %}{{ m() }}",
    "{% macro p(a, t=t | string) %}{{ a }}/{{ t }}{% endmacro %}{{ p(1) }} {{ p(1, 2) }}",
    "{% macro v(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ v(1, 2, 3, x=4) }}|{{ v(1) }}",
    "{% filter upper %}abc {{ 'def' }}{% endfilter %}",
    "{% for m in msgs %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]{% endgeneration %}{% endif %}{% endfor %}",
    # expressions: access, slicing, in, ~, arithmetic, comparisons
    "{{ msgs[0]['role'] }} {{ msgs[1].content }} {{ msgs[-1].role }} {{ d.c[1] }} {{ msgs.0.role }}",
    "{{ items[::-1] }} {{ items[1:] }} {{ items[:-1] }} {{ 'héllo'[1:3] }} {{ 'abc'[::-1] }} {{ 'abcdef'[::2] }} {{ items[5:] }}",
    "{{ 'ell' in 'hello' }} {{ 3 in items }} {{ 'a' in d }} {{ 'z' not in d }} {{ 1 not in items }}",
    "{{ 1 ~ 'a' ~ none ~ t ~ f }}|{{ undefined_var ~ 'x' }}",
    "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -n }} {{ 2 ** -1 }}",
    "{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1.5e-7 }} {{ 123456789.123 }} {{ -0.0 }} {{ 3 * 1.0 }} {{ 2.5 * 2 }}",
    "{{ 1 < 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ none == none }} {{ 'a' != 'a' }} {{ 2 >= 2 }} {{ true == 1 }}",
    "{{ t and 'x' }} {{ none or 'y' }} {{ 0 or [] }} {{ not empty }} {{ 'a' and 0 }}",
    "{{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'a' + 'b' }}",
    "{{ none }} {{ t }} {{ false }} {{ items }} {{ d }} {{ (1,) }} {{ () }} {{ ['it\\'s', \"q\\\"\"] }} {{ {'k': none, 1: 2.0} }}",
    "{{ 'line\\nbreak\\ttab \\u00e9 \\x41' }}|{{ \"single ' quote\" }}|{{ 'adj' 'acent' }}",
    # tests
    "{{ x is defined }} {{ n is defined }} {{ none is none }} {{ n is number }} {{ f is float }} {{ n is integer }} {{ t is boolean }} {{ s is string }}",
    "{{ d is mapping }} {{ items is sequence }} {{ s is iterable }} {{ n is iterable }} {{ none is not none }} {{ t is true }} {{ t is false }}",
    "{{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ 2 is in items }} {{ 1 is eq 1 }} {{ n is gt 3 }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ x is undefined }}",
    # string methods
    "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ 'xxhixx'.strip('x') }}][{{ '\\n a \\n'.strip() }}]",
    "{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a-b-c'.rsplit('-', 1) }} {{ 'x</think>y'.split('</think>')[-1] }}",
    "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'hello'.replace('l', 'L') }} {{ 'hello'.replace('l', 'L', 1) }}",
    "{{ 'Hello'.upper() }} {{ 'HeLLo'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'éa'.upper() }}",
    "{{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }} {{ '-'.join(['a', 'b']) }} {{ 'a\\nb\\r\\nc'.splitlines() }}",
    "{{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ '{} and {}'.format(1, 'x') }} {{ '{0}{name}'.format('a', name='b') }}",
    "{{ 'Hi %s, %d items, %.2f%%' % ('Bo', 3, 2.5) }} {{ '%s' % 'x' }} {{ '%r' % 'q' }}",
    # dict methods
    "{{ d.keys() | list }} {{ d.values() | list | length }} {{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 'dflt') }} {{ d.items() | list | first }}",
    # filters
    "{{ d | tojson }}",
    "{{ d | tojson(indent=2) }}",
    "{{ d | tojson(sort_keys=true) }} {{ d | tojson(separators=(',', ':')) }}",
    "{{ msgs[2].tool_calls | tojson }} {{ 'é\"\\\\\\n\\u0001' | tojson }} {{ none | tojson }} {{ [] | tojson(indent=4) }} {{ {} | tojson }} {{ 1.0 | tojson }}",
    "[{{ s | trim }}] {{ s | length }} {{ 'héllo' | length }} {{ items | length }} {{ d | count }} {{ undefined_x | length }}",
    "{{ items | join(', ') }} {{ msgs | map(attribute='role') | join('/') }} {{ items | join }}",
    "{{ 'Hello' | upper }} {{ 'Hello' | lower }} {{ 'hello wORLD' | title }} {{ 'hello wORLD' | capitalize }}",
    "{{ x | default('dflt') }} {{ none | default('dflt') }} {{ '' | default('dflt', true) }} {{ n | d(0) }} {{ x | default }}|",
    "{{ d | items | list }} {{ 'abc' | list }} {{ d | list }}",
    "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ msgs | rejectattr('tool_calls') | list | length }} {{ msgs | selectattr('tool_calls', 'defined') | list | length }}",
    "{{ [0, 1, '', 'a', none] | select | list }} {{ items | reject('odd') | list }} {{ items | select('gt', 1) | list }}",
    "{{ items | map('string') | join('-') }} {{ ['1', '2'] | map('int') | sum }} {{ msgs | map(attribute='missing', default='?') | list }}",
    "{{ 'a-b-a' | replace('a', 'x') }} {{ items | first }} {{ items | last }} {{ 'abc' | first }} {{ empty | first is undefined }}",
    "{{ n | string }}{{ f | string }}{{ '42' | int + 1 }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(5) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 2 | float }}",
    "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}",
    "{{ d | dictsort }} {{ {'b': 1, 'A': 2} | dictsort }} {{ {'b': 1, 'a': 2} | dictsort(by='value') }}",
    "{{ items | sort }} {{ items | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort }} {{ msgs | sort(attribute='role') | map(attribute='role') | list }}",
    "{{ [1, 2, 1, 3] | unique | list }} {{ items | reverse | list }} {{ 'abc' | reverse }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ items | sum }} {{ items | min }} {{ items | max }}",
    "{{ 'one two  three' | wordcount }} {{ '<a>' | e }} {{ '<b>' | safe }} {{ 'x' | safe + '<y>' }}",
    "{{ '%s-%s' | format(1, 2) }} {{ [1, [2]] | string }} {{ msgs | length > 2 }}",
    "{{ 1 < n < 10 }} {{ 1 < n < 5 }} {{ 3 > 2 > 1 }} {{ 1 == 1 != 2 }}",
    "{% with a = n, b = 'x' %}{{ a }}{{ b }}{% set n = 0 %}{{ n }}{% endwith %}{{ n }}{{ a is defined }}",
    "{% for x in items %}{{ loop.cycle('odd', 'even') }} {% endfor %}",
    "{{ 'y' if empty | select else 'n' }} {{ 'y' if empty | map('string') else 'n' }} {{ items | map('string') | first }} {{ items | select | list | length }}",
    "{{ 7 | round }} {{ false | round }} {{ 2.0 is odd }} {{ 3.0 is odd }} {{ 0.5 is odd }} {{ 0.5 is even }} {{ -3 is odd }} {{ -2.5 is divisibleby 0.5 }} {{ true * [1] }} {{ (1, 'x') * 2 }} {{ (1,) + (2,) }} {{ 2 * 'ab' }} {{ (1, 'x') | title }} {{ 'a-b c(d' | title }}",
    "{{ '[1, 2] x_y  z!' | wordcount }} {{ ['a', 'B'] is lower }} {{ 'x' % [1] }} {{ missing | capitalize }}|{{ missing | center(3) if false }}|{{ missing | sort | list }} {{ missing | min is defined }}",
    # global functions
    "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}",
    "{{ strftime_now('%Y-%m-%d %d %b %Y') }}",
    # undefined behaviour that does not raise
    "{{ missing }}|{{ d.missing }}|{{ d['missing'] is defined }}|{{ none.attr is defined }}|{% for x in missing %}x{% endfor %}|{{ missing | list }}",
    # errors (must fail)
    "{{ missing.attr }}",
    "{{ raise_exception('custom message') }}",
    "{% set x = items.append(4) %}",
    "{{ d.update({'z': 1}) }}",
    "{{ 1 / 0 }}",
    "{{ 1 // 0 }}",
    "{{ n | nosuchfilter }}",
    "{{ n is nosuchtest }}",
    "{{ 'a' + 1 }}",
    "{{ none | length }}",
    "{% for x in none %}{% endfor %}",
    "{{ 1 < 'a' }}",
    "{% set n.attr = 1 %}",
    "{% if t %}unclosed",
    "{{ unclosed",
    "{% endfor %}",
    "{% unknowntag %}",
    "{{ 'a' }",
    "{{ range(1000000) | length }}",
    "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}",
    "{% macro m(a) %}{{ varargs }}{% endmacro %}{{ m(1, b=2) }}",
    "{{ 'x' | tojson(ensure_ascii=true) }} {{ 'é☃😀' | tojson(ensure_ascii=true) }}",
    "{{ items | map('string') | tojson }}",
    "{{ items | select | length }}",
    "{{ (items | reverse)[0] }}|{{ n[0] }}|{{ 5.5.x }}|{{ d[0] }}|{{ items['x'] }}",
    "{{ (items | select)[1:] }}",
    "{{ n[1:] }}",
    "{{ t | indent }}",
    "{{ 'abc' % 1 }}",
    "{{ 'abc' % 'x' }}",
    "{{ [[1], [1]] | unique | list }}",
    "{{ missing | abs }}",
    "{{ missing | int }}",
    "{{ [1] in d }}",
]


def main():
    env = make_env()
    out = []
    for src in CASES:
        case = {"template": src, "vars": V}
        try:
            case["expected"] = env.from_string(src).render(**V)
        except Exception as e:  # noqa: BLE001 — every failure is an expected error case
            case["error"] = "%s: %s" % (type(e).__name__, e)
        out.append(case)
    json.dump({"jinja2": jinja2.__version__, "cases": out}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
