// The body of an answer or topic summary, as safe HTML built in Python (ui/rendering.py), with its [n] markers
// as buttons: a click reports the marker's index to Python, which opens the source.
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  let root = parentElement.querySelector(".la-text");
  if (!root) {
    root = document.createElement("div");
    root.className = "la-text";
    parentElement.appendChild(root);
  }
  root.innerHTML = data.html;
  root.querySelectorAll("button.la-cite").forEach((button) => {
    button.addEventListener("click", () => setTriggerValue("cite", button.dataset.marker));
  });
}
