// Rollout viewer: builds the page from the JSON block #viewer-data.
// Every piece of data becomes a text node (never innerHTML): model text is shown,
// not interpreted. Filters and the open rollout live in the URL fragment.
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("viewer-data").textContent);
  var ROLLOUTS = DATA.rollouts;
  var FILTERS = ["env", "domain", "outcome", "failing"];
  var form = document.getElementById("filters");

  function el(tag, attrs) {
    var node = document.createElement(tag);
    var key;
    for (key in attrs || {}) {
      if (attrs[key] !== null && attrs[key] !== undefined) {
        node.setAttribute(key, attrs[key]);
      }
    }
    for (var i = 2; i < arguments.length; i++) {
      append(node, arguments[i]);
    }
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(node, c); });
    } else if (typeof child === "string" || typeof child === "number") {
      node.appendChild(document.createTextNode(String(child)));
    } else {
      node.appendChild(child);
    }
  }

  function state() {
    var raw = window.location.hash.replace(/^#/, "") || window.location.search.replace(/^\?/, "");
    var params = new URLSearchParams(raw);
    var out = {};
    FILTERS.concat(["rollout"]).forEach(function (name) { out[name] = params.get(name) || ""; });
    return out;
  }

  function setState(next) {
    var params = new URLSearchParams();
    Object.keys(next).forEach(function (name) {
      if (next[name]) params.set(name, next[name]);
    });
    // Drop any ?query: once a filter is chosen, the fragment alone holds the state.
    history.replaceState(null, "", window.location.pathname + "#" + params.toString());
    render();
  }

  function matches(r, s) {
    return (!s.env || r.environment === s.env) &&
      (!s.domain || r.domains.indexOf(s.domain) >= 0) &&
      (!s.outcome || r.outcome === s.outcome) &&
      (!s.failing || r.failing.indexOf(s.failing) >= 0);
  }

  function fillSelect(name, values) {
    var select = form.elements[name];
    values.forEach(function (v) { select.appendChild(el("option", { value: v }, v)); });
  }

  function unique(lists) {
    var seen = {};
    lists.forEach(function (list) { list.forEach(function (v) { seen[v] = true; }); });
    return Object.keys(seen).sort();
  }

  function badge(outcome) {
    var text = { passed: "passed", failed: "failed", unevaluated: "not evaluated" }[outcome];
    return el("span", { "class": "badge " + outcome }, text);
  }

  function renderList(shown, s) {
    var list = document.getElementById("rollout-list");
    list.replaceChildren();
    shown.forEach(function (r) {
      var item = el("li", {
        "class": "rollout" + (r.key === s.rollout ? " selected" : ""),
        "data-key": r.key,
        "data-outcome": r.outcome,
        "data-environment": r.environment
      },
        el("a", { href: "#" }, badge(r.outcome), " ", el("strong", null, r.key)),
        el("div", { "class": "meta" }, r.environment,
          r.failing.length ? " \u00b7 failing: " + r.failing.join(", ") : ""));
      item.firstChild.addEventListener("click", function (event) {
        event.preventDefault();
        var next = state();
        next.rollout = r.key;
        setState(next);
      });
      list.appendChild(item);
    });
    if (!shown.length) list.appendChild(el("li", { "class": "empty" }, "No rollout matches these filters."));
  }

  function renderCounts(shown) {
    var tally = { passed: 0, failed: 0, unevaluated: 0 };
    ROLLOUTS.forEach(function (r) { tally[r.outcome] += 1; });
    document.getElementById("counts").replaceChildren(
      "Showing " + shown.length + " of " + ROLLOUTS.length + " rollouts \u00b7 " +
      tally.passed + " passed \u00b7 " + tally.failed + " failed \u00b7 " +
      tally.unevaluated + " not evaluated");
    var skipped = Object.keys(DATA.skipped).map(function (k) { return k + ": " + DATA.skipped[k]; });
    document.getElementById("skipped").replaceChildren(
      skipped.length ? "Input items skipped: " + skipped.join(", ") : "");
  }

  function field(name, value, wide) {
    if (value === null || value === undefined || value === "") return null;
    return el("div", { "class": wide ? "field wide" : "field" },
      el("span", { "class": "label" }, name + ": "), String(value));
  }

  function summary(r) {
    var usage = Object.keys(r.usage).map(function (role) {
      var u = r.usage[role];
      return role + " " + (u.prompt_tokens + u.completion_tokens) + " tokens, $" + u.cost_usd.toFixed(4);
    });
    var models = Object.keys(r.models).map(function (role) { return role + " " + r.models[role]; });
    return el("div", { "class": "summary" },
      el("h2", null, badge(r.outcome), " ", r.key),
      el("div", { "class": "fields" },
        field("environment", r.environment),
        field("domains", r.domains.join(", ")),
        field("stop", r.stop),
        field("turns", r.turns),
        field("score", r.total_score === null ? null : r.total_score.toFixed(2)),
        field("malformed tool calls", r.format_errors || null),
        field("models", models.join("; ")),
        field("usage", usage.join("; ")),
        field("error", r.error_kind ? r.error_kind + ": " + r.error : r.error, true),
        field("task", r.instruction, true)));
  }

  function goldenCalls(r) {
    if (!r.golden_calls.length) return null;
    return el("details", { "class": "golden" },
      el("summary", null, "Golden calls (" + r.golden_calls.length + ")"),
      el("ol", null, r.golden_calls.map(function (c) {
        return el("li", null, el("code", null, c.tool), el("pre", null, c.arguments));
      })));
  }

  function message(m) {
    var body = [];
    if (m.reasoning) body.push(el("details", { "class": "reasoning" }, el("summary", null, "reasoning"), el("pre", null, m.reasoning)));
    if (m.text) body.push(el(m.role === "tool" ? "pre" : "p", { "class": "text" }, m.text));
    (m.calls || []).forEach(function (c) {
      body.push(el("div", { "class": "call" + (c.malformed ? " malformed" : "") },
        el("div", null, "\u2192 call ", el("code", null, c.name),
          c.route ? el("span", { "class": "route" }, " (" + c.route + ")") : null,
          c.malformed ? el("span", { "class": "flag" }, " arguments are not a JSON object") : null),
        el("pre", null, c.arguments)));
    });
    var who = m.role === "tool" ? ["tool result", m.name ? [" \u00b7 ", el("code", null, m.name)] : null] : m.role;
    return el("div", { "class": "msg " + m.role }, el("div", { "class": "role" }, who), body);
  }

  function diffSection(r) {
    var parts = [el("h3", null, "State diff against the golden run")];
    var hashes = r.hash_match === null ? "hashes: final " + (r.final_hash || "none") :
      (r.hash_match ? "final state hash matches the golden one" : "final state hash differs: " +
        r.final_hash.slice(0, 16) + "\u2026 vs expected " + r.expected_hash.slice(0, 16) + "\u2026");
    parts.push(el("p", { "class": r.hash_match === false ? "bad" : "note" }, hashes));
    if (!r.has_golden) parts.push(el("p", { "class": "note" }, "No golden task found for this query."));
    if (!r.has_final_diff) parts.push(el("p", { "class": "note" }, "The rollout recorded no final state."));
    if (!r.diff.length) parts.push(el("p", { "class": "note" }, "Neither run changed the database."));
    r.diff.forEach(function (t) {
      parts.push(el("table", { "class": "diff", "data-table": t.table },
        el("caption", null, t.table + (t.matches ? " \u2714 same changes" : "")),
        el("thead", null, el("tr", null, ["change", "row", "column", "golden", "agent", ""].map(function (h) {
          return el("th", null, h);
        }))),
        el("tbody", null, t.changes.map(function (c) {
          return el("tr", { "class": c.status },
            el("td", null, c.kind), el("td", null, el("code", null, c.row)),
            el("td", null, c.column || ""), el("td", null, c.expected || "\u2014"),
            el("td", null, c.actual || "\u2014"), el("td", { "class": "status" }, c.status));
        }))));
    });
    return el("section", { "class": "diff-section" }, parts);
  }

  function verdictList(title, verdicts) {
    if (!verdicts.length) return null;
    return [el("h3", null, title), el("div", { "class": "verdicts" }, verdicts.map(function (v) {
      var status = v.skipped ? "skipped" : (v.passed ? "passed" : "failed");
      return el("div", { "class": "verdict " + status, "data-evaluator": v.name },
        el("div", null, el("strong", null, v.name), " ", el("span", { "class": "badge " + status }, status),
          " score " + v.score.toFixed(2)),
        v.reasoning ? el("p", null, v.reasoning) : null,
        v.details ? el("pre", null, v.details) : null);
    }))];
  }

  function renderDetail(r) {
    var detail = document.getElementById("detail");
    detail.replaceChildren();
    if (!r) return;
    var verdicts = r.outcome === "unevaluated" ?
      [el("h3", null, "Verdicts"), el("p", { "class": "note" }, "Not evaluated.")] :
      verdictList("Verdicts", r.verdicts);
    append(detail, [
      summary(r),
      goldenCalls(r),
      verdicts,
      verdictList("The original tool's scoring", r.legacy),
      diffSection(r),
      el("h3", null, "Conversation"),
      el("div", { "class": "conversation" }, r.messages.map(message))
    ]);
  }

  function render() {
    var s = state();
    FILTERS.forEach(function (name) { form.elements[name].value = s[name]; });
    var shown = ROLLOUTS.filter(function (r) { return matches(r, s); });
    var open = shown.filter(function (r) { return r.key === s.rollout; })[0] || shown[0];
    if (open) s.rollout = open.key;
    renderCounts(shown);
    renderList(shown, s);
    renderDetail(open);
  }

  fillSelect("env", unique(ROLLOUTS.map(function (r) { return [r.environment]; })));
  fillSelect("domain", unique(ROLLOUTS.map(function (r) { return r.domains; })));
  fillSelect("failing", unique(ROLLOUTS.map(function (r) { return r.failing; })));
  form.addEventListener("change", function () {
    var next = state();
    FILTERS.forEach(function (name) { next[name] = form.elements[name].value; });
    setState(next);
  });
  window.addEventListener("hashchange", render);
  render();
}());
