/**
 * nbtrace JupyterLab extension: the runs sidebar, the compare view and the re-execute
 * dialog, wired to JupyterLab's commands, palette, settings, state and layout restorer.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, IThemeManager, Notification } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStateDB } from '@jupyterlab/statedb';
import { SidePanel } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { getRun, listRuns, NbtraceError, setServerSettings } from './api';
import { themeChanged } from './charts';
import { nbtraceIcon } from './icons';
import { IRunsQueryState, RunsModel } from './model';
import { createNotebookFromRun, OpenMode } from './notebook';
import { ITableSettings, TableState } from './table/TableState';
import type { ISweep } from './types';
import { createCompareWidget } from './widgets/CompareView';
import { setRenderMime } from './widgets/details/NotebookPreview';
import { createRunsTableWidget } from './widgets/MainRunsView';
import { RerunDialog } from './widgets/RerunDialog';
import { SweepDialog } from './widgets/SweepDialog';
import { DetailsWidget } from './widgets/RunDetails';
import { CommandIDs, MAX_COMPARE, RunsWidget } from './widgets/RunsView';

const PLUGIN_ID = 'nbtrace:plugin';
const STATE_KEY = 'nbtrace:runs-query';
const TABLE_STATE_KEY = 'nbtrace:runs-table-query';

/** The id of the run under the context menu, if any. */
function runIdAt(app: JupyterFrontEnd): string | null {
  const node = app.contextMenuHitTest(n => !!n.dataset?.runId);
  return node?.dataset.runId ?? null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Browse, filter, compare and re-execute nbtrace runs.',
  autoStart: true,
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ISettingRegistry,
    IStateDB,
    INotebookTracker,
    IThemeManager,
    IRenderMimeRegistry
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    state: IStateDB | null,
    tracker: INotebookTracker | null,
    themes: IThemeManager | null,
    rendermime: IRenderMimeRegistry | null
  ) => {
    setRenderMime(rendermime);
    setServerSettings(app.serviceManager.serverSettings);
    const { commands, shell } = app;
    const model = new RunsModel();
    // The main-area table has its own query, selection and columns.
    const tableModel = new RunsModel();
    const tableState = new TableState();

    // The sidebar: runs on top, details of the clicked run below.
    const panel = new SidePanel();
    panel.id = 'nbtrace-sidebar';
    panel.title.icon = nbtraceIcon;
    panel.title.label = 'nbtrace';
    panel.title.caption = 'nbtrace';
    panel.addClass('nbtrace-Sidebar');
    const runsWidget = new RunsWidget(model, commands);
    const detailsWidget = new DetailsWidget({ model, commands, tracker });
    panel.addWidget(runsWidget);
    panel.addWidget(detailsWidget);
    shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'nbtrace-sidebar');

    themes?.themeChanged.connect(() => themeChanged.emit());

    // Settings: columns and poll interval.
    let settings: ISettingRegistry.ISettings | null = null;
    let tableLoaded = false;
    const applySettings = () => {
      if (!settings) {
        return;
      }
      const interval = settings.get('pollInterval').composite as number;
      model.pollInterval = Math.max(0, (interval ?? 2) * 1000);
      tableModel.pollInterval = model.pollInterval;
      const table: Partial<ITableSettings> = {};
      for (const key of ['tableColumns', 'columnWidths', 'columnOrder', 'groupBy'] as const) {
        const value = settings.get(key).composite;
        if (value !== undefined) {
          (table as any)[key] = value;
        }
      }
      // Once: later changes come from the table itself (saving them fires `changed` key by
      // key, with the other keys not saved yet); an edit in the settings editor applies at
      // the next start.
      if (!tableLoaded) {
        tableLoaded = true;
        tableState.load(table);
      }
    };
    // Last query: state database.
    const restoreQuery = async (key: string): Promise<Partial<IRunsQueryState>> => {
      try {
        return ((await state?.fetch(key)) as Partial<IRunsQueryState>) ?? {};
      } catch {
        return {};
      }
    };
    void Promise.all([
      settingRegistry?.load(PLUGIN_ID).catch(() => null) ?? Promise.resolve(null),
      restoreQuery(STATE_KEY),
      restoreQuery(TABLE_STATE_KEY)
    ]).then(([loaded, query, tableQuery]) => {
      settings = loaded;
      settings?.changed.connect(() => {
        applySettings();
        const cols = settings!.get('columns').composite as string[];
        if (JSON.stringify(cols) !== JSON.stringify(model.columns)) {
          model.setColumns(cols);
        }
      });
      applySettings();
      const columns = (settings?.get('columns').composite as string[] | undefined) ?? null;
      model.restore(query, columns);
      tableModel.restore(tableQuery, null);
    });
    model.queryChanged.connect((_, query) => {
      void state?.save(STATE_KEY, query as any);
    });
    tableModel.queryChanged.connect((_, query) => {
      void state?.save(TABLE_STATE_KEY, query as any);
    });
    tableState.settingsChanged.connect((_, table) => {
      if (settings) {
        for (const [key, value] of Object.entries(table)) {
          void settings.set(key, value as any);
        }
      }
    });
    model.columnsChanged.connect((_, columns) => {
      void settings?.set('columns', columns);
    });

    commands.addCommand(CommandIDs.open, {
      label: 'nbtrace: Open runs',
      caption: 'Show the nbtrace runs sidebar',
      icon: nbtraceIcon,
      execute: () => {
        shell.activateById(panel.id);
      }
    });

    let tableWidget: ReturnType<typeof createRunsTableWidget> | null = null;
    commands.addCommand(CommandIDs.openTable, {
      label: 'nbtrace: Open runs table',
      caption: 'Show the runs in a full-width table in the main area',
      icon: nbtraceIcon,
      execute: () => {
        if (!tableWidget || tableWidget.isDisposed) {
          tableWidget = createRunsTableWidget({
            model: tableModel,
            state: tableState,
            commands,
            tracker
          });
          shell.add(tableWidget, 'main');
        }
        shell.activateById(tableWidget.id);
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'nbtrace: Refresh runs',
      execute: () => model.refresh()
    });

    commands.addCommand(CommandIDs.compare, {
      label: 'nbtrace: Compare selected runs',
      icon: nbtraceIcon,
      isEnabled: args => {
        const n = (args.source === 'table' ? tableModel : model).selected.length;
        return n >= 2 && n <= MAX_COMPARE;
      },
      execute: args => {
        const runs = (args.source === 'table' ? tableModel : model).selectedRuns;
        if (runs.length < 2 || runs.length > MAX_COMPARE) {
          Notification.warning(`Select 2 to ${MAX_COMPARE} runs to compare them.`, {
            autoClose: 4000
          });
          return;
        }
        const widget = createCompareWidget(runs);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      }
    });
    model.selectionChanged.connect(() => commands.notifyCommandChanged(CommandIDs.compare));
    tableModel.selectionChanged.connect(() => commands.notifyCommandChanged(CommandIDs.compare));

    const openRerun = async (id: string | null) => {
      if (!id) {
        return;
      }
      try {
        const run = await getRun(id);
        const dialog = new RerunDialog({
          run,
          onNewRun: newId => {
            void model.refresh();
            void tableModel.refresh();
            model.activate(newId);
          }
        });
        dialog.open();
      } catch (error) {
        Notification.error(error instanceof NbtraceError ? error.message : String(error));
      }
    };

    commands.addCommand(CommandIDs.rerun, {
      label: 'nbtrace: Re-execute run',
      caption: 'Re-execute the run in a fresh kernel, with its parameters editable',
      isEnabled: args => !!(args.id ?? model.activeId),
      execute: args => openRerun((args.id as string) ?? model.activeId)
    });
    const showSweepRuns = async (sweep: ISweep) => {
      // The table lists the sweep's runs together; a small sweep opens in the compare view
      // too (params against metrics, and the parallel coordinates of the filtered runs).
      model.setFilter(`tags.sweep = '${sweep.id}'`);
      if (sweep.runs.length >= 2 && sweep.runs.length <= MAX_COMPARE) {
        const page = await listRuns({ filter: `tags.sweep = '${sweep.id}'`, limit: MAX_COMPARE });
        model.clearSelection();
        for (const r of page.runs) {
          model.setSelected(r, true);
        }
        await commands.execute(CommandIDs.compare);
      }
    };
    const openSweep = async (id: string | null) => {
      if (!id) {
        return;
      }
      try {
        const run = await getRun(id);
        new SweepDialog({
          run,
          onShowRuns: sweep => {
            void model.refresh();
            void showSweepRuns(sweep).catch(error =>
              Notification.error(error instanceof NbtraceError ? error.message : String(error))
            );
          }
        }).open();
      } catch (error) {
        Notification.error(error instanceof NbtraceError ? error.message : String(error));
      }
    };
    commands.addCommand(CommandIDs.sweep, {
      label: 'nbtrace: Sweep run…',
      caption: 'Re-execute the run once per combination of parameter values',
      isEnabled: args => !!(args.id ?? model.activeId),
      execute: args => openSweep((args.id as string) ?? model.activeId)
    });
    commands.addCommand(CommandIDs.rerunRow, {
      label: 'Re-execute…',
      execute: () => openRerun(runIdAt(app))
    });

    const openAsNotebook = async (id: string | null, mode: OpenMode) => {
      if (!id) {
        return;
      }
      try {
        const run = await getRun(id);
        const path = await createNotebookFromRun(app.serviceManager.contents, run, mode);
        await commands.execute('docmanager:open', { path });
      } catch (error) {
        Notification.error(
          `Cannot open the run as a notebook: ${(error as Error).message ?? error}`
        );
      }
    };
    commands.addCommand(CommandIDs.openAsNotebook, {
      label: 'nbtrace: Open run as notebook',
      isEnabled: args => !!(args.id ?? model.activeId),
      execute: (args: ReadonlyPartialJSONObject) =>
        openAsNotebook(
          (args.id as string) ?? model.activeId,
          (args.mode as OpenMode) === 'in_run' ? 'in_run' : 'all'
        )
    });
    commands.addCommand(CommandIDs.openAsNotebookRow, {
      label: 'Open as notebook',
      execute: () => openAsNotebook(runIdAt(app), 'all')
    });

    if (palette) {
      for (const command of [
        CommandIDs.open,
        CommandIDs.openTable,
        CommandIDs.refresh,
        CommandIDs.compare,
        CommandIDs.rerun,
        CommandIDs.openAsNotebook
      ]) {
        palette.addItem({ command, category: 'nbtrace' });
      }
    }
  }
};

export default plugin;
