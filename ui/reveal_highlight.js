// Scroll the source drawer so the first highlighted sentence is in view: the drawer opens at its top, and on a
// phone the highlight often sits below the fold. Once per token (a new source), retried while the drawer slides in.
const done = new Set();

export default function (component) {
  const { data } = component;
  if (!data.token || done.has(data.token)) return;
  done.add(data.token);
  let tries = 0;
  const reveal = () => {
    const mark = document.querySelector('[role="dialog"] mark');
    if (mark) mark.scrollIntoView({ block: "center", behavior: "instant" });
    if (++tries < 6) setTimeout(reveal, 150);
  };
  requestAnimationFrame(reveal);
}
