// An invisible mark: the first time it is drawn with a given token, the page scrolls it to the top of the view,
// so the newest turn is read from its question. What is drawn under the mark (an answer, its evidence table)
// keeps arriving and growing for a while, and Streamlit keeps a chat page pinned to the bottom meanwhile, so the
// scroll is repeated for three seconds, unless the reader scrolls, taps or types first.
const seen = new Set();

export default function (component) {
  const { data, parentElement } = component;
  if (!data.token || seen.has(data.token)) return;
  seen.add(data.token);
  const target = parentElement.host || parentElement;
  let stopped = false;
  const stop = () => { stopped = true; };
  const events = ["wheel", "touchstart", "keydown", "mousedown"];
  events.forEach((name) => window.addEventListener(name, stop, { once: true, passive: true }));
  const scroll = () => { if (!stopped && target.isConnected) target.scrollIntoView({ block: "start", behavior: "instant" }); };
  requestAnimationFrame(scroll);
  [300, 700, 1200, 2000, 3000].forEach((ms) => setTimeout(scroll, ms));
  setTimeout(() => events.forEach((name) => window.removeEventListener(name, stop)), 3100);
}
