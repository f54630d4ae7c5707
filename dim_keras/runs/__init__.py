"""The run directory: its files, how they are written, and reading them back.

A run directory (`dim-keras train --out DIR`) holds:

- `config.json`: every setting, enough to repeat the run;
- `encoder.keras`: the encoder after the last finished epoch, loadable
  without `dim_keras`; `encoder.json` describes its input and outputs (see
  `dim_keras.encoder_file`);
- `checkpoint.weights.h5`: what a resumed run starts from: all weights,
  both optimizers' state and, in the file's attributes, the epochs done and
  the history so far; `checkpoint.previous.weights.h5` is the epoch before,
  kept so that a damaged newest checkpoint still resumes;
- `state.json`: a readable copy of those attributes;
- `history.csv`: one row per finished epoch;
- after evaluation, `evaluation.json`, `evaluation.md` and plots.

Every file is written atomically (`dim_keras.atomic`). After each epoch
`encoder.keras` and `history.csv` are written first and the checkpoint
last: the checkpoint is the commit point, one file holding weights,
optimizer state and epoch count together, so a run killed at any point
resumes from its last committed epoch with matching history.

A write that fails (a full disk, a directory made read-only or
unwritable) stops the run with `WriteError`, one line naming the file and
the reason; the files of the last saved epoch are left whole (`saving`).

Files also get damaged outside the program (interrupted copies, full disks
elsewhere, bit rot). Every file read back from a run is checked: a damaged
one raises `DamagedFileError`, one line naming the file and the way forward.

The package's modules, one job each:

- `files`: the file names, `RunError` and `DamagedFileError`, and the JSON
  and CSV files (`config.json`, `history.csv`);
- `commit`: committing an epoch (its checkpoint, written atomically);
- `write_guard`: `saving` and `WriteError`, a failed write leaving the last
  saved epoch whole;
- `checkpoints`: reading a checkpoint's state and weights back;
- `settings_check`: refusing to resume a run with other settings;
- `resume`: the checkpoints a run resumes from (`resume_points`);
- `finished`: reading a finished run and loading its encoder.
"""

from dim_keras.runs.checkpoints import read_checkpoint_state
from dim_keras.runs.checkpoints import restore_checkpoint
from dim_keras.runs.commit import commit_epoch
from dim_keras.runs.commit import save_checkpoint
from dim_keras.runs.files import BEST_ENCODER_FILE
from dim_keras.runs.files import BEST_ENCODER_METADATA_FILE
from dim_keras.runs.files import CHECKPOINT_FILE
from dim_keras.runs.files import CONFIG_FILE
from dim_keras.runs.files import DamagedFileError
from dim_keras.runs.files import ENCODER_FILE
from dim_keras.runs.files import ENCODER_METADATA_FILE
from dim_keras.runs.files import HISTORY_FILE
from dim_keras.runs.files import PREVIOUS_CHECKPOINT_FILE
from dim_keras.runs.files import RunError
from dim_keras.runs.files import START_OVER
from dim_keras.runs.files import STATE_ATTR
from dim_keras.runs.files import STATE_FILE
from dim_keras.runs.files import history_csv
from dim_keras.runs.files import naming
from dim_keras.runs.files import read_config
from dim_keras.runs.files import read_history
from dim_keras.runs.files import read_json
from dim_keras.runs.files import run_paths
from dim_keras.runs.files import write_config
from dim_keras.runs.files import write_history
from dim_keras.runs.finished import encoder_path
from dim_keras.runs.finished import load_encoder
from dim_keras.runs.finished import read_encoder_info
from dim_keras.runs.finished import read_run_config
from dim_keras.runs.resume import fallback_warning
from dim_keras.runs.resume import no_checkpoint_readable
from dim_keras.runs.resume import read_run_state
from dim_keras.runs.resume import resume_points
from dim_keras.runs.settings_check import RESUMABLE_CHANGES
from dim_keras.runs.settings_check import check_same_settings
from dim_keras.runs.write_guard import WriteError
from dim_keras.runs.write_guard import saving
from dim_keras.runs.write_guard import write_advice
from dim_keras.runs.write_guard import write_reason
from dim_keras.runs.write_guard import written_name
