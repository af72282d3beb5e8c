// MAGRAY dashboard: the event streams (chat answers, agent runs) and keyboard shortcuts.
// Everything else is plain forms and htmx attributes.
"use strict";

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function chat() {
  const form = document.getElementById("chat");
  if (!form) return;
  const log = document.getElementById("chat-log");
  let conversation = "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const box = form.elements.question;
    const question = box.value.trim();
    if (!question) return;
    box.value = "";
    log.append(el("p", { class: "q" }, question));
    const answer = el("div", { class: "a", "aria-busy": "true" });
    log.append(answer);
    const params = new URLSearchParams({ question, csrf: form.dataset.csrf });
    if (conversation) params.set("conversation", conversation);
    const source = new EventSource("/ui/agent/chat/stream?" + params);
    source.addEventListener("delta", (e) => {
      answer.textContent += JSON.parse(e.data).text;
      log.scrollTop = log.scrollHeight;
    });
    source.addEventListener("result", (e) => {
      source.close();
      const data = JSON.parse(e.data);
      answer.textContent = data.answer;
      answer.removeAttribute("aria-busy");
      conversation = data.conversation_id || conversation;
      const cited = data.cited || [];
      if (cited.length) {
        const cites = el("p", { class: "cites" }, "Cited: ");
        cited.forEach((id, i) => {
          if (i) cites.append(", ");
          cites.append(el("a", { href: "/ui/memory/" + encodeURIComponent(id), class: "cite" }, id.slice(0, 12)));
        });
        log.append(cites);
      }
    });
    source.addEventListener("error", (e) => {
      source.close();
      answer.removeAttribute("aria-busy");
      let detail = "the answer stopped; try again.";
      try { detail = JSON.parse(e.data).detail || detail; } catch (_) { /* connection error */ }
      answer.append(el("p", { class: "error", role: "alert" }, detail));
    });
  });
}

function diffOf(args) {
  // A search-and-replace edit as the lines it removes and adds.
  if (typeof args.search !== "string" || typeof args.replace !== "string") return null;
  const lines = [`--- ${args.path || ""}`, `+++ ${args.path || ""}`];
  args.search.split("\n").forEach((l) => lines.push("-" + l));
  args.replace.split("\n").forEach((l) => lines.push("+" + l));
  return el("pre", { class: "diff", "aria-label": "change" }, lines.join("\n"));
}

function showArgs(args) {
  // The exact call: an argv or command line as one line, file edits as their text.
  const wrap = el("div");
  const diff = diffOf(args || {});
  if (diff) wrap.append(diff);
  for (const [k, v] of Object.entries(args || {})) {
    const text = Array.isArray(v) ? v.map((x) => JSON.stringify(x)).join(" ") :
      typeof v === "string" ? v : JSON.stringify(v, null, 2);
    wrap.append(el("div", { class: "muted" }, k), el("pre", { class: "arg", "data-arg": k }, text));
  }
  return wrap;
}

function run() {
  const root = document.getElementById("run");
  if (!root) return;
  const plan = document.getElementById("plan");
  const steps = document.getElementById("steps");
  const approval = document.getElementById("approval");
  const result = document.getElementById("result");
  const state = document.getElementById("run-state");
  const source = new EventSource(root.dataset.events);
  source.addEventListener("plan", (e) => {
    const data = JSON.parse(e.data);
    plan.replaceChildren();
    for (const s of data.steps) {
      const li = el("li", { "data-step": s.id });
      li.append(el("strong", {}, s.tool), " ", el("span", { class: "muted" }, s.why || ""));
      li.append(showArgs(s.args));
      plan.append(li);
    }
  });
  source.addEventListener("approval", (e) => {
    const data = JSON.parse(e.data);
    approval.hidden = !data.waiting;
    if (data.waiting) approval.querySelector("button").focus();
    if (!data.waiting && "approved" in data) state.textContent = data.approved ? "approved" : "refused";
  });
  source.addEventListener("steps", (e) => {
    steps.replaceChildren();
    for (const s of JSON.parse(e.data).steps) {
      steps.append(el("li", { "data-status": s.status }, `${s.tool} (${s.id}): ${s.status}`));
    }
  });
  source.addEventListener("result", (e) => {
    source.close();
    const data = JSON.parse(e.data);
    state.textContent = data.success === false || data.ok === false ? "finished: goal not met" : "finished";
    result.replaceChildren(el("pre", { id: "result-json" }, JSON.stringify(data, null, 2)));
  });
  source.addEventListener("error", (e) => {
    source.close();
    let detail = "the event stream stopped; reload to see the run so far.";
    try { detail = JSON.parse(e.data).detail || detail; } catch (_) { /* connection error */ }
    state.textContent = "error";
    result.replaceChildren(el("p", { class: "error", role: "alert" }, detail));
  });
}

function shortcuts() {
  document.addEventListener("keydown", (e) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (e.key === "/" && !typing) {
      const box = document.querySelector("input[name=query]");
      if (box) { e.preventDefault(); box.focus(); }
    }
  });
}

document.addEventListener("DOMContentLoaded", () => { chat(); run(); shortcuts(); });
