// An invisible mark: the first time it is drawn with a given token, the page scrolls it to the top of the view,
// so the newest turn is read from its start. Streamlit keeps a chat page pinned to the bottom while the elements
// under the mark are still arriving, so the scroll is repeated once they have.
const seen = new Set();

export default function (component) {
  const { data, parentElement } = component;
  if (!data.token || seen.has(data.token)) return;
  seen.add(data.token);
  const target = parentElement.host || parentElement;
  const scroll = () => target.scrollIntoView({ block: "start", behavior: "instant" });
  requestAnimationFrame(scroll);
  setTimeout(scroll, 400);
}
