// Small pieces the saved searches and dashboards pages share: a modal
// dialog (the browser's own <dialog>: focus kept inside, Esc closes), a confirmation, and a
// file download made in the page.
import { html } from './html.js';
import { useEffect, useRef } from '../vendor/hooks.module.js';

let dialogCount = 0;

/**
 * A modal dialog, open while it is rendered. `onClose` runs when it is dismissed (Esc or a
 * button of its own); focus goes back to what had it before.
 */
export function Modal({ title, onClose, children, wide = false }) {
  const ref = useRef(null);
  const titleId = useRef(`dlg-title-${(dialogCount += 1)}`).current;
  useEffect(() => {
    const before = document.activeElement;
    const d = ref.current;
    if (!d.open) d.showModal();
    return () => {
      if (d.open) d.close();
      if (before && document.contains(before) && before.focus) before.focus();
    };
  }, []);
  const cancel = (e) => {
    e.preventDefault();
    onClose();
  };
  return html`<dialog ref=${ref} class=${wide ? 'lf-dialog wide' : 'lf-dialog'} aria-labelledby=${titleId} onCancel=${cancel}>
    <h2 id=${titleId}>${title}</h2>
    ${children}
  </dialog>`;
}

/** A yes/no question: `onConfirm` on the confirming button, `onCancel` otherwise. */
export function Confirm({ title, message, confirmLabel, danger = false, onConfirm, onCancel }) {
  return html`<${Modal} title=${title} onClose=${onCancel}>
    <p>${message}</p>
    <div class="lf-actions">
      <button type="button" onClick=${onCancel}>Cancel</button>
      <button type="button" class=${danger ? 'danger' : 'primary'} onClick=${onConfirm}>${confirmLabel}</button>
    </div>
  <//>`;
}

/** Saves `text` as a file named `filename` (a download made in the page: nothing leaves the machine). */
export function download(filename, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
