/**
 * A React widget showing a runs model: the model polls only while the widget is on screen
 * (the sidebar's runs section, the main-area table).
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';

import type { RunsModel } from '../model';

/** Tells its model when it is on screen. */
export abstract class RunsModelWidget extends ReactWidget {
  constructor(protected readonly runsModel: RunsModel) {
    super();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.runsModel.visible = this.isVisible;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.runsModel.visible = true;
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.runsModel.visible = false;
  }

  protected onBeforeDetach(msg: Message): void {
    this.runsModel.visible = false;
    super.onBeforeDetach(msg);
  }
}
