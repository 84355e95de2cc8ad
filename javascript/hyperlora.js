// HyperLoRA (sd-webui-hyperlora): autocomplete of <hyperlora:NAME:weight> in the prompt boxes.
//
// Typing "<hyperlora:" (then any part of a name) in a positive prompt box (txt2img, img2img, hires fix and
// other extensions' prompt boxes that the WebUI's own Ctrl+Up/Down works in, ADetailer's included; never a
// negative prompt) lists the stored identities; Up/Down or the mouse wheel browse a long list, Enter or Tab
// (or a click) inserts "NAME:0.85>", Escape closes. Names come from GET ./hyperlora/ui/names (mounted with or
// without --api). Ctrl+Up/Down on a <hyperlora:NAME:w> tag is the WebUI's own edit-attention.js: it treats
// <...:w> like <lora:...:w> (step: "Precision for <extra networks:0.9>").
(function() {
    "use strict";

    const NAMES_URL = "./hyperlora/ui/names";
    // the hosts' prompt boxes: the selector of their edit-attention.js
    const PROMPTS = "*:is([id*='_toprow'] [id*='_prompt'], .prompt) textarea";
    // the id of a prompt box says whether it is negative: txt2img_neg_prompt, hires_neg_prompt,
    // ADetailer's script_txt2img_adetailer_ad_negative_prompt
    const NEGATIVE_ID = /neg/i;
    const TAG_BEFORE_CARET = /<hyperlora:([^:<>\n]*)$/i;
    const MAX_ITEMS = 500; // the popup scrolls; a prefix narrows it
    const FRESH_MS = 3000;

    const HELP_URL = "./hyperlora/ui/help";
    // ids of the panel (hyperlora_txt2img_KEY) and of the card editor (txt2img_hyperlora_edit_user_metadata_KEY)
    const HELP_ID = /^(?:hyperlora_(?:txt2img|img2img)|(?:txt2img|img2img)_hyperlora_edit_user_metadata)_(\w+)$/;
    const HELP_ELEMENTS = ["hyperlora_txt2img_", "hyperlora_img2img_", "txt2img_hyperlora_edit_user_metadata_",
        "img2img_hyperlora_edit_user_metadata_"].map((prefix) => `[id^='${prefix}']`).join(", ");

    // The WebUI's root (script.js); its elements live there, not always in `document` itself.
    function root() {
        return typeof gradioApp === "function" ? gradioApp() : document;
    }

    // A prompt box whose tags are applied: a host prompt box that is not a negative prompt.
    function isPositivePrompt(el) {
        if (!(el instanceof HTMLTextAreaElement) || !el.matches(PROMPTS)) return false;
        const box = el.closest("[id*='prompt']");
        return !(box && NEGATIVE_ID.test(box.id));
    }

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
            popup.addEventListener("mousedown", (e) => e.preventDefault()); // its scrollbar keeps the caret
            const app = root();
            (app === document ? document.body : app).appendChild(popup);
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
        popup.style.display = "block";
        place();
        const selected = popup.querySelector(".selected");
        if (selected) selected.scrollIntoView({block: "nearest"});
    }

    // Under the prompt box (above it when there is no room below); only moves the popup, so its own
    // scroll position (mouse wheel) is kept.
    function place() {
        const box = state.target.getBoundingClientRect();
        popup.style.left = `${Math.max(0, box.left)}px`;
        popup.style.maxWidth = `${Math.max(160, box.width)}px`;
        const height = popup.offsetHeight;
        const above = box.bottom + 2 + height > window.innerHeight && box.top - 2 - height >= 0;
        popup.style.top = `${above ? box.top - 2 - height : box.bottom + 2}px`;
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
            if (!now || (root().activeElement || document.activeElement) !== target) return;
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

    function onInput(e) {
        if (isPositivePrompt(e.target)) suggest(e.target);
    }

    function onKeyDown(e) {
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
    }

    function onBeforeInput(e) {
        if (swallowNewline && (e.inputType === "insertLineBreak" || e.inputType === "insertParagraph")) {
            e.preventDefault();
        }
    }

    function onFocusOut(e) {
        if (state && e.target === state.target) hide();
    }

    // The page (or a panel) scrolled: follow the prompt box. The popup's own scrolling (wheel) is left alone.
    function onScroll(e) {
        if (state && popup && !popup.contains(e.target)) place();
    }

    function listen() {
        const app = root();
        app.addEventListener("input", onInput, true);
        app.addEventListener("keydown", onKeyDown, true);
        app.addEventListener("beforeinput", onBeforeInput, true);
        app.addEventListener("focusout", onFocusOut, true);
        window.addEventListener("scroll", onScroll, true); // the page's own scrolling is not inside the app
        window.addEventListener("resize", hide);
    }

    // Hover help: the hosts set a component's tooltip= as its title (hints.js), except where their
    // gradio drops it (Forge, gradio 4): fill in the titles that are missing. Gradio 4 mounts a tab's
    // controls only when the tab is first shown, so this runs again after UI updates (onAfterUiUpdate:
    // once per burst of changes), and only over the panel's and the card editor's own elements.
    let help = null;

    function applyHelp() {
        if (!help) return;
        root().querySelectorAll(HELP_ELEMENTS).forEach((el) => {
            if (el.title) return;
            const m = el.id.match(HELP_ID);
            if (m && help[m[1]]) el.title = help[m[1]];
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

    function start() {
        listen();
        loadHelp();
    }

    if (typeof onUiLoaded === "function") onUiLoaded(start);
    else window.addEventListener("load", start);
    if (typeof onAfterUiUpdate === "function") {
        onAfterUiUpdate(applyHelp);
    } else if (typeof onUiUpdate === "function") { // older hosts: debounce it here
        let timer = null;
        onUiUpdate(() => {
            clearTimeout(timer);
            timer = setTimeout(applyHelp, 200);
        });
    }
})();
