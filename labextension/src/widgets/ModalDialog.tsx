/**
 * The modal shell shared by the Re-execute and Sweep dialogs.
 *
 * Why one class: a modal must take the rest of the page out of the accessibility tree and out of
 * input (`aria-hidden` + `inert`), close on Escape, keep Tab inside itself and give focus back on
 * close; two copies of those rules drift apart.
 */

import { ReactWidget } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import React from 'react';

/** A modal dialog attached to `document.body`; subclasses render the form. */
export abstract class ModalDialog extends ReactWidget {
  /**
   * @param label - the dialog's accessible name
   */
  constructor(label: string) {
    super();
    this.addClass('nbtrace-Dialog');
    this.node.setAttribute('role', 'dialog');
    this.node.setAttribute('aria-modal', 'true');
    this.node.setAttribute('aria-label', label);
    this._previousFocus = document.activeElement as HTMLElement | null;
  }

  /** Show the dialog. */
  open(): void {
    // Modal: the rest of the page leaves the accessibility tree and takes no input.
    for (const child of Array.from(document.body.children)) {
      if (child instanceof HTMLElement && !child.hasAttribute('aria-hidden')) {
        child.setAttribute('aria-hidden', 'true');
        child.inert = true;
        this._hidden.push(child);
      }
    }
    Widget.attach(this, document.body);
    this.node.addEventListener('keydown', this._onKey);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.node.removeEventListener('keydown', this._onKey);
    for (const child of this._hidden) {
      child.removeAttribute('aria-hidden');
      child.inert = false;
    }
    this._hidden = [];
    super.dispose();
    this._previousFocus?.focus?.();
  }

  /** The form inside the dialog; `close` disposes of the dialog. */
  protected abstract renderForm(close: () => void): JSX.Element;

  protected render(): JSX.Element {
    return <div className="nbtrace-Dialog-content">{this.renderForm(() => this.dispose())}</div>;
  }

  private _onKey = (event: KeyboardEvent): void => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      this.dispose();
      return;
    }
    if (event.key !== 'Tab') {
      return;
    }
    const focusable = [
      ...this.node.querySelectorAll<HTMLElement>(
        'button:not([disabled]), input:not([disabled]), select, textarea, [tabindex="0"]'
      )
    ];
    if (focusable.length === 0) {
      return;
    }
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      last.focus();
      event.preventDefault();
    } else if (!event.shiftKey && document.activeElement === last) {
      first.focus();
      event.preventDefault();
    }
  };

  private _previousFocus: HTMLElement | null;
  private _hidden: HTMLElement[] = [];
}
