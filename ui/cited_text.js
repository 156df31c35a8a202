// The body of an answer or topic summary, as safe HTML built in Python (ui/rendering.py), with its [n] markers
// as buttons: a click reports the marker's index to Python, which opens the source. When the source drawer
// closes, the focus goes back to the [n] that opened it (keyboard users continue where they were).
let lastCite = null; // {key, marker} of the [n] that opened the drawer
const roots = new Map(); // key -> the component's text root (inside its shadow root: document queries miss it)

function refocus() {
  if (!lastCite) return;
  const { key, marker } = lastCite;
  let tries = 0;
  const attempt = () => {
    if (document.querySelector('[role="dialog"]')) return; // a drawer is open (again): leave the focus to it
    const root = roots.get(key);
    const button = root && root.isConnected ? root.querySelector(`button.la-cite[data-marker="${marker}"]`) : null;
    if (button && document.activeElement !== button) button.focus();
    if (++tries < 8) setTimeout(attempt, 150); // the rerun after closing may redraw around it
  };
  attempt();
  lastCite = null;
}

if (!window.__laDialogWatch) {
  window.__laDialogWatch = true;
  let open = false;
  new MutationObserver(() => {
    const now = Boolean(document.querySelector('[role="dialog"]'));
    if (open && !now) refocus();
    open = now;
  }).observe(document.body, { childList: true, subtree: true });
}

export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  let root = parentElement.querySelector(".la-text");
  if (!root) {
    root = document.createElement("div");
    root.className = "la-text";
    parentElement.appendChild(root);
  }
  roots.set(data.key, root);
  if (root.dataset.html === data.html) return; // unchanged: keep the buttons (and the focus on one)
  root.dataset.html = data.html;
  root.innerHTML = data.html;
  root.querySelectorAll("button.la-cite").forEach((button) => {
    button.addEventListener("click", () => {
      lastCite = { key: data.key, marker: button.dataset.marker };
      setTriggerValue("cite", button.dataset.marker);
    });
  });
}
