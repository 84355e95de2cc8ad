// HyperLoRA (sd-webui-hyperlora): autocomplete of <hyperlora:NAME:weight> in the prompt boxes.
//
// Typing "<hyperlora:" (then any part of a name) in a prompt box (txt2img, img2img, hires fix: the
// boxes the WebUI's own Ctrl+Up/Down works in) lists the stored identities; Up/Down pick, Enter or
// Tab (or a click) inserts "NAME:0.85>", Escape closes. Names come from GET ./hyperlora/ui/names
// (mounted with or without --api). Ctrl+Up/Down on a <hyperlora:NAME:w> tag is the WebUI's own
// edit-attention.js: it treats <...:w> like <lora:...:w> (step: "Precision for <extra networks:0.9>").
(function() {
    "use strict";

    const NAMES_URL = "./hyperlora/ui/names";
    const PROMPTS = "*:is([id*='_toprow'] [id*='_prompt'], .prompt) textarea";
    const TAG_BEFORE_CARET = /<hyperlora:([^:<>\n]*)$/i;
    const MAX_ITEMS = 20;
    const FRESH_MS = 3000;

    const HELP_URL = "./hyperlora/ui/help";
    // ids of the panel (hyperlora_txt2img_KEY) and of the card editor (txt2img_hyperlora_edit_user_metadata_KEY)
    const HELP_ID = /^(?:hyperlora_(?:txt2img|img2img)|(?:txt2img|img2img)_hyperlora_edit_user_metadata)_(\w+)$/;

    let cache = {names: [], weight: 0.85, at: 0};
    let swallowNewline = false; // the Enter that accepted a suggestion must not also break the line
    let popup = null;
    let state = null; // {target, start, items, index}

    function loadNames(force) {
        if (!force && Date.now() - cache.at < FRESH_MS) return Promise.resolve(cache);
        return fetch(NAMES_URL, {credentials: "same-origin", cache: "no-store"})
            .then((r) => (r.ok ? r.json() : null))
            .then((data) => {
                if (data && Array.isArray(data.names)) {
                    cache = {names: data.names, weight: Number(data.weight) || 0.85, at: Date.now()};
                }
                return cache;
            })
            .catch(() => cache);
    }

    // The name typed so far when the caret follows "<hyperlora:", else null.
    function query(target) {
        if (target.selectionStart !== target.selectionEnd) return null;
        const before = target.value.slice(0, target.selectionStart);
        const m = before.match(TAG_BEFORE_CARET);
        if (!m) return null;
        return {start: target.selectionStart - m[1].length, prefix: m[1]};
    }

    function matching(names, prefix) {
        const p = prefix.trim().toLowerCase();
        const first = names.filter((n) => n.toLowerCase().startsWith(p));
        const then = names.filter((n) => !n.toLowerCase().startsWith(p) && n.toLowerCase().includes(p));
        return first.concat(then).slice(0, MAX_ITEMS);
    }

    function formatWeight(w) {
        return String(Number(w.toFixed(4)));
    }

    function hide() {
        state = null;
        if (popup) popup.style.display = "none";
    }

    function render() {
        if (!popup) {
            popup = document.createElement("div");
            popup.id = "hyperlora_suggestions";
            popup.className = "hyperlora-suggestions";
            popup.setAttribute("role", "listbox");
            document.body.appendChild(popup);
        }
        popup.replaceChildren();
        state.items.forEach((name, i) => {
            const item = document.createElement("div");
            item.className = "hyperlora-suggestion" + (i === state.index ? " selected" : "");
            item.setAttribute("role", "option");
            item.textContent = name;
            item.title = `Insert <hyperlora:${name}:${formatWeight(cache.weight)}>`;
            item.addEventListener("mousedown", (e) => {
                e.preventDefault(); // keep the focus (and the caret) in the prompt box
                accept(i);
            });
            popup.appendChild(item);
        });
        const hint = document.createElement("div");
        hint.className = "hyperlora-suggestions-hint";
        hint.textContent = "HyperLoRA · ↑↓ pick · Enter insert · Esc close";
        popup.appendChild(hint);
        const box = state.target.getBoundingClientRect();
        popup.style.left = `${Math.max(0, box.left)}px`;
        popup.style.top = `${box.bottom + 2}px`;
        popup.style.maxWidth = `${Math.max(160, box.width)}px`;
        popup.style.display = "block";
        const selected = popup.querySelector(".selected");
        if (selected) selected.scrollIntoView({block: "nearest"});
    }

    function accept(index) {
        if (!state) return;
        const target = state.target;
        const name = state.items[index];
        const text = target.value;
        const caret = target.selectionStart;
        const rest = text.slice(caret).match(/^[^:<>\n]*/)[0]; // the rest of a name being retyped
        const tail = text.slice(caret + rest.length);
        const inserted = /^[:>]/.test(tail) ? name : `${name}:${formatWeight(cache.weight)}>`;
        target.value = text.slice(0, state.start) + inserted + tail;
        const at = state.start + inserted.length;
        target.setSelectionRange(at, at);
        hide();
        swallowNewline = true;
        setTimeout(() => {
            swallowNewline = false;
        }, 0);
        updateInput(target);
    }

    function suggest(target) {
        const q = query(target);
        if (!q) {
            hide();
            return;
        }
        loadNames(q.prefix === "").then(() => {
            const now = query(target);
            if (!now || document.activeElement !== target) return;
            const items = matching(cache.names, now.prefix);
            if (!items.length) {
                hide();
                return;
            }
            const keep = state && state.target === target ? items.indexOf(state.items[state.index]) : -1;
            state = {target: target, start: now.start, items: items, index: Math.max(0, keep)};
            render();
        });
    }

    document.addEventListener("input", (e) => {
        const target = e.target;
        if (target instanceof HTMLTextAreaElement && target.matches(PROMPTS)) suggest(target);
    }, true);

    document.addEventListener("keydown", (e) => {
        if (!state || e.target !== state.target) return;
        if (e.ctrlKey || e.metaKey || e.altKey) {
            hide(); // Ctrl+Up/Down and friends belong to the WebUI
            return;
        }
        const n = state.items.length;
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
            state.index = (state.index + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
            render();
        } else if (e.key === "Enter" || e.key === "Tab") {
            accept(state.index);
        } else if (e.key === "Escape") {
            hide();
        } else {
            return;
        }
        e.preventDefault();
        e.stopPropagation();
    }, true);

    document.addEventListener("beforeinput", (e) => {
        if (swallowNewline && (e.inputType === "insertLineBreak" || e.inputType === "insertParagraph")) {
            e.preventDefault();
        }
    }, true);

    // Hover help: the hosts set a component's tooltip= as its title (hints.js), except where their
    // gradio drops it (Forge, gradio 4): fill in the titles that are missing. Gradio 4 mounts a tab's
    // controls only when the tab is first shown, so this runs again on every UI update (onUiUpdate).
    let help = null;

    function applyHelp() {
        if (!help) return;
        document.querySelectorAll("[id*='hyperlora']").forEach((el) => {
            const m = el.id.match(HELP_ID);
            if (m && help[m[1]] && !el.title) el.title = help[m[1]];
        });
    }

    function loadHelp() {
        fetch(HELP_URL, {credentials: "same-origin"})
            .then((r) => (r.ok ? r.json() : null))
            .then((data) => {
                if (data && data.help) {
                    help = data.help;
                    applyHelp();
                }
            })
            .catch(() => {});
    }

    if (typeof onUiLoaded === "function") onUiLoaded(loadHelp);
    else window.addEventListener("load", loadHelp);
    if (typeof onUiUpdate === "function") onUiUpdate(applyHelp);

    document.addEventListener("focusout", (e) => {
        if (state && e.target === state.target) hide();
    }, true);
    window.addEventListener("resize", hide);
    document.addEventListener("scroll", () => {
        if (state) render();
    }, true);
})();
