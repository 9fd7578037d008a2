// A confirmation dialog (a modal <dialog>: Escape and "Cancel" say no, focus starts on Cancel).
import { h } from './dom.js';

/**
 * Ask before doing something that cannot be undone.
 * @param {{title: string, message: string, confirm: string}} text the question, what it does,
 *   and the label of the button that does it (e.g. "Delete")
 * @returns {Promise<boolean>} true when confirmed
 */
export function confirmDialog({ title, message, confirm }) {
  return new Promise((resolve) => {
    const titleId = `dialog-title-${Math.random().toString(36).slice(2, 8)}`;
    const yes = h('button', { type: 'button', class: 'danger', text: confirm });
    const no = h('button', { type: 'button', text: 'Cancel' });
    const dialog = h(
      'dialog',
      { class: 'confirm-dialog', 'aria-labelledby': titleId },
      h('h2', { id: titleId, text: title }),
      h('p', { text: message }),
      h('div', { class: 'dialog-buttons' }, no, yes),
    );
    let answer = false;
    const finish = (value) => {
      answer = value;
      dialog.close();
    };
    yes.addEventListener('click', () => finish(true));
    no.addEventListener('click', () => finish(false));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}
