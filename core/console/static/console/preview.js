// Previews of task data: images inline, audio and video in players (their bytes come through
// the resolve endpoint, so seeking is a Range request to our proxy), text escaped, HTML in a
// sandboxed frame without scripts.
import { h } from "./api.js";

const EXTENSIONS = {
  image: ["png", "jpg", "jpeg", "gif", "webp", "bmp", "avif", "tif", "tiff", "ico"],
  audio: ["mp3", "wav", "ogg", "oga", "flac", "m4a", "aac", "opus"],
  video: ["mp4", "webm", "mov", "m4v", "ogv", "mkv"],
  html: ["html", "htm"],
};
const TAGS = {
  image: "image",
  audio: "audio",
  audioplus: "audio",
  video: "video",
  hypertext: "html",
  text: "text",
  paragraphs: "text",
};

/** {variable: kind} from a label config: `<Image value="$image">` makes image an image. */
export function configKinds(labelConfig) {
  const kinds = {};
  if (!labelConfig) return kinds;
  const doc = new DOMParser().parseFromString(labelConfig, "text/xml");
  for (const el of doc.querySelectorAll("[value]")) {
    const value = el.getAttribute("value") || "";
    const kind = TAGS[el.tagName.toLowerCase()];
    if (kind && value.startsWith("$")) kinds[value.slice(1)] = kind;
  }
  return kinds;
}

/** The storage URI a resolve link carries (`?fileuri=<urlsafe base64>`), else the value. */
export function originalUri(value) {
  try {
    const url = new URL(value, location.origin);
    const fileuri = url.searchParams.get("fileuri");
    if (fileuri && url.pathname.includes("/resolve")) {
      const b64 = fileuri.replace(/-/g, "+").replace(/_/g, "/");
      return atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    }
  } catch {
    /* not a URL */
  }
  return value;
}

export function kindOf(key, value, kinds) {
  if (typeof value !== "string") return "json";
  const fromConfig = kinds[key];
  if (fromConfig) return fromConfig; // the label config says how the value is shown
  const isLink = /^(https?:|\/|[a-z0-9+-]+:\/\/)/i.test(value) && !/\s/.test(value);
  if (isLink) {
    const path = originalUri(value).split(/[?#]/)[0];
    const ext = (path.split(".").pop() || "").toLowerCase();
    for (const [kind, list] of Object.entries(EXTENSIONS)) if (list.includes(ext)) return kind === "html" ? "link" : kind;
    return "link";
  }
  if (/^\s*<[a-z!]/i.test(value)) return "html";
  return "text";
}

/** Whether the browser may load `value` itself (resolve links and http(s) URLs). */
function loadable(value) {
  return /^(https?:\/\/|\/)/i.test(value);
}

function fileName(value) {
  const uri = originalUri(value);
  return uri.split(/[?#]/)[0].split("/").pop() || uri;
}

/** One data value, `compact` for table cells, full size (players that seek) on the task page. */
export function preview(key, value, kinds, compact = false) {
  const kind = kindOf(key, value, kinds);
  const data = { dataset: { key, kind } };
  if ((kind === "image" || kind === "audio" || kind === "video") && !loadable(value)) {
    return h("code", { ...data, class: "uri" }, value);
  }
  switch (kind) {
    case "image":
      return h("img", { ...data, src: value, alt: `${key}: ${fileName(value)}`, loading: "lazy", class: compact ? "thumb" : "full" });
    case "audio":
      return h("audio", { ...data, src: value, controls: true, preload: compact ? "none" : "metadata" });
    case "video":
      return h("video", { ...data, src: value, controls: true, preload: compact ? "none" : "metadata", class: compact ? "thumb-video" : "full" });
    case "html":
      if (compact) return h("span", { ...data, class: "snippet" }, value.slice(0, 160));
      // No allow-scripts, no allow-same-origin: the frame's content cannot run or reach us.
      return h("iframe", { ...data, sandbox: "", srcdoc: value, title: `${key} (HTML, sandboxed)`, class: "html-frame" });
    case "link":
      return loadable(value)
        ? h("a", { ...data, href: value, rel: "noopener noreferrer", target: "_blank" }, fileName(value))
        : h("code", { ...data, class: "uri" }, value);
    case "json":
      return h("code", { ...data, class: "snippet" }, JSON.stringify(value).slice(0, compact ? 160 : 100000));
    default:
      return h(compact ? "span" : "p", { ...data, class: compact ? "snippet" : "text" }, compact ? value.slice(0, 160) : value);
  }
}
