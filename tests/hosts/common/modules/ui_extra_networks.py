"""Fake of ``modules/ui_extra_networks.py`` (A1111 v1.10.1@82a973c; Forge@dfdcbab adds VAE / SD-version fields
that our items do not have). What a page's items must provide, read the way the host reads them:
``create_html`` lists the items (``list_items``), reads each one's user metadata, and renders the
cards (``item["prompt"]``, ``["filename"]``, ``["name"]``, ``["local_preview"]`` required) and the
directory view: "Dirs" (the default) or "Tree", whose file entries need ``item["shorthash"]``.
``get_single_card`` is the route the card editor's "refresh one card" calls (``create_item(name,
enable_filter=False)``). ``create_ui`` builds each page's tab, its card editor (``create_ui``) and
the hidden refresh button ``{tabname}_{page}_extra_refresh_internal``. Left out: the HTML
templates' full markup, sorting controls, cover images."""

from __future__ import annotations

import html
import os
import urllib.parse
from pathlib import Path

import gradio as gr
from modules import errors, extra_networks, shared, ui_extra_networks_user_metadata, util

extra_pages = []
allowed_dirs = set()
default_allowed_preview_extensions = ["png", "jpg", "jpeg", "webp", "gif"]

CARD = '<div class="card" onclick="{card_clicked}" data-name="{name}" {sort_keys}>{background_image}' \
       '<div class="additional">{search_terms}</div><span class="name">{name}</span>' \
       '<span class="description">{description}</span></div>'
TREE_BUTTON = '<div class="tree-list-content {subclass}" data-path="{data_path}" data-hash="{data_hash}" ' \
              'onclick="{onclick_extra}">{action_list_item_label}</div>'


def allowed_preview_extensions():
    return set(default_allowed_preview_extensions) | {shared.opts.samples_format}


def register_page(page):
    extra_pages.append(page)
    allowed_dirs.clear()
    allowed_dirs.update(set(sum([x.allowed_directories_for_previews() for x in extra_pages], [])))


def quote_js(s):
    s = s.replace("\\", "\\\\")
    s = s.replace('"', '\\"')
    return f'"{s}"'


def path_is_parent(parent_path, child_path):
    return os.path.abspath(child_path).startswith(os.path.abspath(parent_path))


def get_single_card(page: str = "", tabname: str = "", name: str = ""):
    page = next(iter([x for x in extra_pages if x.name == page]), None)
    try:
        item = page.create_item(name, enable_filter=False)
        page.items[name] = item
    except Exception as e:
        errors.display(e, "creating item for extra network")
        item = page.items.get(name)
    page.read_user_metadata(item, use_cache=False)
    return {"html": page.create_item_html(tabname, item, CARD)}


class ExtraNetworksPage:
    def __init__(self, title):
        self.title = title
        self.name = title.lower()
        self.extra_networks_tabname = self.name.replace(" ", "_")
        self.allow_prompt = True
        self.allow_negative_prompt = False
        self.metadata = {}
        self.items = {}
        self.lister = util.MassFileLister()

    def refresh(self):
        pass

    def read_user_metadata(self, item, use_cache=True):
        metadata = extra_networks.get_user_metadata(item.get("filename", None),
                                                    lister=self.lister if use_cache else None)
        desc = metadata.get("description", None)
        if desc is not None:
            item["description"] = desc
        item["user_metadata"] = metadata

    def link_preview(self, filename):
        quoted_filename = urllib.parse.quote(filename.replace("\\", "/"))
        mtime, _ = self.lister.mctime(filename)
        return f"./sd_extra_networks/thumb?filename={quoted_filename}&mtime={mtime}"

    def search_terms_from_path(self, filename, possible_directories=None):
        abspath = os.path.abspath(filename)
        for parentdir in (possible_directories if possible_directories is not None
                          else self.allowed_directories_for_previews()):
            parentdir = os.path.dirname(os.path.abspath(parentdir))
            if abspath.startswith(parentdir):
                return os.path.relpath(abspath, parentdir)
        return ""

    def create_item_html(self, tabname, item, template=None):
        preview = item.get("preview", None)
        background_image = f'<img src="{html.escape(preview)}" class="preview" loading="lazy">' if preview else ""
        onclick = item.get("onclick", None)
        if onclick is None:
            onclick = html.escape(f"cardClicked('{tabname}', {item['prompt']}, "
                                  f"{item.get('negative_prompt', chr(39) * 2)}, "
                                  f"{str(self.allow_negative_prompt).lower()});")
        copy_path = f"<div data-clipboard-text=\"{item['filename']}\"></div>"
        sort_keys = " ".join(f'data-sort-{k}="{html.escape(str(v))}"' for k, v in item.get("sort_keys", {}).items())
        search_terms = "".join(f"<span class='hidden search_terms'>{t}</span>" for t in item.get("search_terms", []))
        description = item.get("description", "") or "" if shared.opts.extra_networks_card_show_desc else ""
        if not shared.opts.extra_networks_card_description_is_html:
            description = html.escape(description)
        args = {
            "background_image": background_image, "card_clicked": onclick, "copy_path_button": copy_path,
            "description": description, "edit_button": "", "metadata_button": "",
            "local_preview": quote_js(item["local_preview"]), "name": html.escape(item["name"]),
            "prompt": item.get("prompt", None), "search_terms": search_terms, "sort_keys": sort_keys,
            "tabname": tabname, "extra_networks_tabname": self.extra_networks_tabname,
        }
        return template.format(**args) if template else args

    def create_tree_file_item_html(self, tabname, file_path, item):
        args = self.create_item_html(tabname, item)
        return TREE_BUTTON.format(subclass="tree-list-content-file", data_path=file_path, data_hash=item["shorthash"],
                                  onclick_extra=args["card_clicked"], action_list_item_label=item["name"])

    def create_tree_view_html(self, tabname):
        roots = [os.path.abspath(x) for x in self.allowed_directories_for_previews()]
        files = sorted((v["filename"], v) for v in self.items.values()
                       if any(path_is_parent(r, v["filename"]) for r in roots))
        return "<ul>" + "".join(f"<li>{self.create_tree_file_item_html(tabname, f, v)}</li>" for f, v in files) + \
            "</ul>"

    def create_dirs_view_html(self, tabname):
        return ""

    def create_card_view_html(self, tabname, *, none_message):
        res = [self.create_item_html(tabname, item, CARD) for item in self.items.values()]
        return "".join(res) or none_message or "<div class='nocards'>Nothing here.</div>"

    def create_html(self, tabname, *, empty=False):
        self.lister.reset()
        self.metadata = {}
        items_list = [] if empty else self.list_items()
        self.items = {x["name"]: x for x in items_list}
        for item in self.items.values():
            metadata = item.get("metadata")
            if metadata:
                self.metadata[item["name"]] = metadata
            if "user_metadata" not in item:
                self.read_user_metadata(item)
        cards = self.create_card_view_html(tabname, none_message="Loading..." if empty else None)
        if shared.opts.extra_networks_tree_view_style == "Tree":
            pane = self.create_tree_view_html(tabname)
        else:
            pane = self.create_dirs_view_html(tabname)
        return f"<div id='{tabname}_{self.extra_networks_tabname}_pane'>{pane}{cards}</div>"

    def create_item(self, name, index=None):
        raise NotImplementedError()

    def list_items(self):
        raise NotImplementedError()

    def allowed_directories_for_previews(self):
        return []

    def get_sort_keys(self, path):
        pth = Path(path)
        mtime, ctime = self.lister.mctime(path)
        return {"date_created": int(mtime), "date_modified": int(ctime), "name": pth.name.lower(),
                "path": str(pth).lower()}

    def find_preview(self, path):
        potential_files = sum([[f"{path}.{ext}", f"{path}.preview.{ext}"] for ext in allowed_preview_extensions()],
                              [])
        for file in potential_files:
            if self.lister.exists(file):
                return self.link_preview(file)
        return None

    def find_description(self, path):
        for file in [f"{path}.txt", f"{path}.description.txt"]:
            if not self.lister.exists(file):
                continue
            try:
                with open(file, encoding="utf-8", errors="replace") as f:
                    return f.read()
            except OSError:
                pass
        return None

    def create_user_metadata_editor(self, ui, tabname):
        return ui_extra_networks_user_metadata.UserMetadataEditor(ui, tabname, self)


def initialize():
    extra_pages.clear()


class ExtraNetworksUi:
    def __init__(self):
        self.pages = None
        self.pages_contents = None
        self.stored_extra_pages = None
        self.tabname = None
        self.user_metadata_editors = []
        self.refresh_buttons = {}


def create_ui(interface, unrelated_tabs, tabname):
    """Each page's tab with its cards' HTML and its card editor, then its hidden refresh button,
    whose click re-creates every page's HTML."""
    ui = ExtraNetworksUi()
    ui.pages = []
    ui.stored_extra_pages = list(extra_pages)
    ui.tabname = tabname
    for page in ui.stored_extra_pages:
        with gr.Tab(page.title, elem_id=f"{tabname}_{page.extra_networks_tabname}", elem_classes=["extra-page"]):
            ui.pages.append(gr.HTML(page.create_html(tabname, empty=True),
                                    elem_id=f"{tabname}_{page.extra_networks_tabname}_cards_html"))
            editor = page.create_user_metadata_editor(ui, tabname)
            editor.create_ui()
            ui.user_metadata_editors.append(editor)

    def refresh():
        for pg in ui.stored_extra_pages:
            pg.refresh()
        ui.pages_contents = [pg.create_html(ui.tabname) for pg in ui.stored_extra_pages]
        return ui.pages_contents

    for page in ui.stored_extra_pages:
        button = gr.Button("Refresh", elem_id=f"{tabname}_{page.extra_networks_tabname}_extra_refresh_internal",
                           visible=False)
        button.click(fn=refresh, inputs=[], outputs=ui.pages)
        ui.refresh_buttons[page.name] = button
    return ui
