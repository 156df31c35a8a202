// A page of a PDF as an image (a data: URL made in Python: nothing is fetched) with boxes over the cited
// sentence(s); the first time a view is drawn (its token), the first box is scrolled to the middle of the drawer.
const seen = new Set();

export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector(".la-pdf-page");
  if (!root) {
    root = document.createElement("div");
    root.className = "la-pdf-page";
    parentElement.appendChild(root);
  }
  const image = document.createElement("img");
  image.alt = data.label;
  image.src = data.image;
  const boxes = data.boxes.map(([x0, y0, x1, y1]) => {
    const box = document.createElement("div");
    box.className = "la-pdf-box";
    Object.assign(box.style, { left: `${x0 * 100}%`, top: `${y0 * 100}%`, width: `${(x1 - x0) * 100}%`,
                               height: `${(y1 - y0) * 100}%` });
    return box;
  });
  root.replaceChildren(image, ...boxes);
  if (!boxes.length || !data.token || seen.has(data.token)) return;
  seen.add(data.token);
  const scroll = () => boxes[0].scrollIntoView({ block: "center", behavior: "instant" });
  if (image.complete) requestAnimationFrame(scroll); else image.addEventListener("load", scroll, { once: true });
  setTimeout(scroll, 400);
}
