/*
 * Unit tests for the inline progress scan: a table of log samples, each with
 * the stage, progress and last_log it must produce, then the cases a table
 * cannot express (NULL input, long lines, inputs built at run time).
 */
#include "jobwire/progress.h"

#include "check.h"

#include <stdlib.h>

typedef struct progress_case {
    const char *name;
    const char *logs;
    size_t len;
    const char *stage;
    double progress;
    const char *last_log;
} progress_case_t;

/* Expands a string literal to pointer and length, so embedded NULs count. */
#define LOGS(literal) literal, sizeof(literal) - 1

#define NONE -1.0
#define U_FFFD "\xef\xbf\xbd"

#define A_10 "aaaaaaaaaa"
#define A_70 A_10 A_10 A_10 A_10 A_10 A_10 A_10
#define A_80 A_70 A_10
#define E_ACUTE_10                                                                                 \
    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
#define E_ACUTE_80                                                                                 \
    E_ACUTE_10 E_ACUTE_10 E_ACUTE_10 E_ACUTE_10 E_ACUTE_10 E_ACUTE_10 E_ACUTE_10 E_ACUTE_10
#define BLOCK_10 "██████████"
#define BLOCK_80 BLOCK_10 BLOCK_10 BLOCK_10 BLOCK_10 BLOCK_10 BLOCK_10 BLOCK_10 BLOCK_10
#define EMOJI_2 "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
#define EMOJI_10 EMOJI_2 EMOJI_2 EMOJI_2 EMOJI_2 EMOJI_2
#define EMOJI_80 EMOJI_10 EMOJI_10 EMOJI_10 EMOJI_10 EMOJI_10 EMOJI_10 EMOJI_10 EMOJI_10
#define ZERO_10 "0000000000"
#define ZERO_100 ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10

/* Expands a char array to pointer and length, without its terminating NUL. */
#define LOGS_OF(array) array, sizeof(array) - 1

/* "logs" of tests/fixtures/replicate/prediction.processing.json */
static const char fixture_prediction_processing[] =
    "Using seed: 4242\n"
    "Prompt: a watercolor portrait of a fox wearing a scarf\n"
    "txt2img mode\n"
    "  0%|          | 0/30 [00:00<?, ?it/s]\n"
    " 10%|█         | 3/30 [00:00<00:01, 12.43it/s]\n"
    " 20%|██        | 6/30 [00:00<00:01, 12.46it/s]\n"
    " 30%|███       | 9/30 [00:00<00:01, 12.49it/s]\n"
    " 40%|████      | 12/30 [00:00<00:01, 12.42it/s]\n"
    " 50%|█████     | 15/30 [00:01<00:01, 12.45it/s]\n"
    " 60%|██████    | 18/30 [00:01<00:00, 12.48it/s]\n";

/* "logs" of tests/fixtures/replicate/prediction.succeeded.json */
static const char fixture_prediction_succeeded[] =
    "Using seed: 4242\n"
    "Prompt: a watercolor portrait of a fox wearing a scarf\n"
    "txt2img mode\n"
    "  0%|          | 0/30 [00:00<?, ?it/s]\n"
    " 10%|█         | 3/30 [00:00<00:01, 12.43it/s]\n"
    " 20%|██        | 6/30 [00:00<00:01, 12.46it/s]\n"
    " 30%|███       | 9/30 [00:00<00:01, 12.49it/s]\n"
    " 40%|████      | 12/30 [00:00<00:01, 12.42it/s]\n"
    " 50%|█████     | 15/30 [00:01<00:01, 12.45it/s]\n"
    " 60%|██████    | 18/30 [00:01<00:00, 12.48it/s]\n"
    " 70%|███████   | 21/30 [00:01<00:00, 12.41it/s]\n"
    " 80%|████████  | 24/30 [00:01<00:00, 12.44it/s]\n"
    " 90%|█████████ | 27/30 [00:01<00:00, 12.47it/s]\n"
    "100%|██████████| 30/30 [00:02<00:00, 12.40it/s]\n"
    "Generated image in 2.61s\n";

/* "logs" of tests/fixtures/replicate/prediction.canceled.json */
static const char fixture_prediction_canceled[] =
    "Using seed: 4242\n"
    "Prompt: a watercolor portrait of a fox wearing a scarf\n"
    "txt2img mode\n"
    "  0%|          | 0/30 [00:00<?, ?it/s]\n"
    " 10%|█         | 3/30 [00:00<00:01, 12.43it/s]\n"
    " 20%|██        | 6/30 [00:00<00:01, 12.46it/s]\n"
    " 30%|███       | 9/30 [00:00<00:01, 12.49it/s]\n";

/* "logs" of tests/fixtures/replicate/prediction.failed.json */
static const char fixture_prediction_failed[] =
    "Using seed: 4242\n"
    "Traceback (most recent call last):\n"
    "  File \"/src/predict.py\", line 88, in predict\n"
    "    raise ValueError(\"width must be a multiple of 64 (got 1000)\")\n"
    "ValueError: width must be a multiple of 64 (got 1000)\n";

/* "logs" of tests/fixtures/replicate/training.processing.json */
static const char fixture_training_processing[] =
    "Extracting input_images to /src/input_images\n"
    "Found 18 images\n"
    "Captioning 18 images with trigger word PSTYLE ...\n"
    "[ 1/18] img_001.jpg -> a photo of PSTYLE, a woman in a red coat, studio light\n"
    "[ 2/18] img_002.jpg -> a photo of PSTYLE, a man with glasses, outdoors\n"
    "[18/18] img_018.jpg -> a photo of PSTYLE, a child holding a kite\n"
    "Caching latents: 100%|██████████| 18/18 [00:06<00:00,  2.81it/s]\n"
    "Starting training: 1000 steps, 10 epochs, batch size 1, lr 4.0e-04, rank 16\n"
    "flux_train_replicate:   0%|          | 0/1000 [00:00<?, ?it/s]\n"
    "epoch 1/10 done | step 100/1000 | avg_loss=0.4371 | lr=4.0e-04\n"
    "flux_train_replicate:  10%|█         | 100/1000 [01:22<12:18,  1.22it/s, lr: 4.0"
    "e-04 loss: 4.371e-01]\n"
    "epoch 2/10 done | step 200/1000 | avg_loss=0.3904 | lr=4.0e-04\n"
    "flux_train_replicate:  20%|██        | 200/1000 [02:44<10:56,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.904e-01]\n"
    "epoch 3/10 done | step 300/1000 | avg_loss=0.3516 | lr=4.0e-04\n"
    "flux_train_replicate:  30%|███       | 300/1000 [04:06<09:34,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.516e-01]\n"
    "epoch 4/10 done | step 400/1000 | avg_loss=0.3288 | lr=4.0e-04\n"
    "flux_train_replicate:  40%|████      | 400/1000 [05:28<08:12,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.288e-01]\n"
    "Saving checkpoint at step 400 to output/flux_train_replicate/checkpoint_000400.s"
    "afetensors\n";

/* "logs" of tests/fixtures/replicate/training.processing.pti-style.json */
static const char fixture_training_processing_pti_style[] =
    "Generating 18 captions...\n"
    "Generated captions ['a photo of TOK, a person standing by a window']\n"
    "# PTI : Loaded dataset\n"
    "# PTI :  Running training\n"
    "# PTI :  Num examples = 18\n"
    "# PTI :  Num batches each epoch = 5\n"
    "# PTI :  Num Epochs = 200\n"
    "# PTI :  Total optimization steps = 1000\n"
    "  0%|          | 0/1000 [00:00<?, ?it/s]\n"
    "# PTI :step: 0, epoch: 0:   0%|          | 1/1000 [00:00<05:58,  2.74it/s]\n"
    "# PTI :step: 1, epoch: 0:   0%|          | 2/1000 [00:00<05:57,  2.74it/s]\n"
    "# PTI :step: 2, epoch: 0:   0%|          | 3/1000 [00:01<05:58,  2.74it/s]\n"
    "# PTI :step: 3, epoch: 0:   0%|          | 4/1000 [00:01<05:57,  2.74it/s]\n"
    "# PTI :step: 4, epoch: 0:   0%|          | 5/1000 [00:01<05:58,  2.74it/s]\n"
    "epoch 1/200 | step 5/1000 | loss 0.1832\n"
    "# PTI :step: 5, epoch: 1:   0%|          | 6/1000 [00:02<05:57,  2.74it/s]\n"
    "# PTI :step: 6, epoch: 1:   0%|          | 7/1000 [00:02<05:58,  2.74it/s]\n"
    "# PTI :step: 7, epoch: 1:   0%|          | 8/1000 [00:02<05:57,  2.74it/s]\n"
    "# PTI :step: 8, epoch: 1:   0%|          | 9/1000 [00:03<05:58,  2.74it/s]\n"
    "# PTI :step: 9, epoch: 1:   1%|          | 10/1000 [00:03<05:57,  2.74it/s]\n"
    "epoch 2/200 | step 10/1000 | loss 0.1747\n"
    "# PTI :step: 10, epoch: 2:   1%|          | 11/1000 [00:03<05:58,  2.74it/s]\n"
    "# PTI :step: 11, epoch: 2:   1%|          | 12/1000 [00:04<05:57,  2.74it/s]\n"
    "# PTI :step: 12, epoch: 2:   1%|▏         | 13/1000 [00:04<05:58,  2.74it/s]\n"
    "# PTI :step: 13, epoch: 2:   1%|▏         | 14/1000 [00:04<05:57,  2.74it/s]\n";

/* "logs" of tests/fixtures/replicate/training.succeeded.json */
static const char fixture_training_succeeded[] =
    "Extracting input_images to /src/input_images\n"
    "Found 18 images\n"
    "Captioning 18 images with trigger word PSTYLE ...\n"
    "[ 1/18] img_001.jpg -> a photo of PSTYLE, a woman in a red coat, studio light\n"
    "[ 2/18] img_002.jpg -> a photo of PSTYLE, a man with glasses, outdoors\n"
    "[18/18] img_018.jpg -> a photo of PSTYLE, a child holding a kite\n"
    "Caching latents: 100%|██████████| 18/18 [00:06<00:00,  2.81it/s]\n"
    "Starting training: 1000 steps, 10 epochs, batch size 1, lr 4.0e-04, rank 16\n"
    "flux_train_replicate:   0%|          | 0/1000 [00:00<?, ?it/s]\n"
    "epoch 1/10 done | step 100/1000 | avg_loss=0.4371 | lr=4.0e-04\n"
    "flux_train_replicate:  10%|█         | 100/1000 [01:22<12:18,  1.22it/s, lr: 4.0"
    "e-04 loss: 4.371e-01]\n"
    "epoch 2/10 done | step 200/1000 | avg_loss=0.3904 | lr=4.0e-04\n"
    "flux_train_replicate:  20%|██        | 200/1000 [02:44<10:56,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.904e-01]\n"
    "epoch 3/10 done | step 300/1000 | avg_loss=0.3516 | lr=4.0e-04\n"
    "flux_train_replicate:  30%|███       | 300/1000 [04:06<09:34,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.516e-01]\n"
    "epoch 4/10 done | step 400/1000 | avg_loss=0.3288 | lr=4.0e-04\n"
    "flux_train_replicate:  40%|████      | 400/1000 [05:28<08:12,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.288e-01]\n"
    "Saving checkpoint at step 400 to output/flux_train_replicate/checkpoint_000400.s"
    "afetensors\n"
    "epoch 5/10 done | step 500/1000 | avg_loss=0.3168 | lr=4.0e-04\n"
    "flux_train_replicate:  50%|█████     | 500/1000 [06:50<06:50,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.168e-01]\n"
    "epoch 6/10 done | step 600/1000 | avg_loss=0.3048 | lr=4.0e-04\n"
    "flux_train_replicate:  60%|██████    | 600/1000 [08:12<05:28,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.048e-01]\n"
    "epoch 7/10 done | step 700/1000 | avg_loss=0.2928 | lr=4.0e-04\n"
    "flux_train_replicate:  70%|███████   | 700/1000 [09:34<04:06,  1.22it/s, lr: 4.0"
    "e-04 loss: 2.928e-01]\n"
    "epoch 8/10 done | step 800/1000 | avg_loss=0.2808 | lr=4.0e-04\n"
    "flux_train_replicate:  80%|████████  | 800/1000 [10:56<02:44,  1.22it/s, lr: 4.0"
    "e-04 loss: 2.808e-01]\n"
    "epoch 9/10 done | step 900/1000 | avg_loss=0.2688 | lr=4.0e-04\n"
    "flux_train_replicate:  90%|█████████ | 900/1000 [12:18<01:22,  1.22it/s, lr: 4.0"
    "e-04 loss: 2.688e-01]\n"
    "epoch 10/10 done | step 1000/1000 | avg_loss=0.2568 | lr=4.0e-04\n"
    "flux_train_replicate: 100%|██████████| 1000/1000 [13:40<00:00,  1.22it/s, lr: 4."
    "0e-04 loss: 2.568e-01]\n"
    "Saved LoRA weights to output/flux_train_replicate/lora.safetensors\n"
    "Packing trained_model.tar (171.6 MB)\n"
    "Uploading weights...\n";

/* "logs" of tests/fixtures/replicate/training.failed.json */
static const char fixture_training_failed[] =
    "Extracting input_images to /src/input_images\n"
    "Found 18 images\n"
    "Captioning 18 images with trigger word PSTYLE ...\n"
    "[ 1/18] img_001.jpg -> a photo of PSTYLE, a woman in a red coat, studio light\n"
    "[ 2/18] img_002.jpg -> a photo of PSTYLE, a man with glasses, outdoors\n"
    "[18/18] img_018.jpg -> a photo of PSTYLE, a child holding a kite\n"
    "Caching latents: 100%|██████████| 18/18 [00:06<00:00,  2.81it/s]\n"
    "Starting training: 1000 steps, 10 epochs, batch size 1, lr 4.0e-04, rank 16\n"
    "flux_train_replicate:   0%|          | 0/1000 [00:00<?, ?it/s]\n"
    "epoch 1/10 done | step 100/1000 | avg_loss=0.4371 | lr=4.0e-04\n"
    "flux_train_replicate:  10%|█         | 100/1000 [01:22<12:18,  1.22it/s, lr: 4.0"
    "e-04 loss: 4.371e-01]\n"
    "epoch 2/10 done | step 200/1000 | avg_loss=0.3904 | lr=4.0e-04\n"
    "flux_train_replicate:  20%|██        | 200/1000 [02:44<10:56,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.904e-01]\n"
    "epoch 3/10 done | step 300/1000 | avg_loss=0.3516 | lr=4.0e-04\n"
    "flux_train_replicate:  30%|███       | 300/1000 [04:06<09:34,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.516e-01]\n"
    "epoch 4/10 done | step 400/1000 | avg_loss=0.3288 | lr=4.0e-04\n"
    "flux_train_replicate:  40%|████      | 400/1000 [05:28<08:12,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.288e-01]\n"
    "Saving checkpoint at step 400 to output/flux_train_replicate/checkpoint_000400.s"
    "afetensors\n"
    "flux_train_replicate:  41%|████      | 410/1000 [05:37<08:04,  1.22it/s, lr: 4.0"
    "e-04 loss: 3.270e-01]\n"
    "Traceback (most recent call last):\n"
    "  File \"/src/train.py\", line 412, in train\n"
    "    loss.backward()\n"
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 ha"
    "s a total capacity of 79.15 GiB of which 1.02 GiB is free.\n";

/* "logs" of tests/fixtures/replicate/training.canceled.json */
static const char fixture_training_canceled[] =
    "Extracting input_images to /src/input_images\n"
    "Found 18 images\n"
    "Captioning 18 images with trigger word PSTYLE ...\n"
    "[ 1/18] img_001.jpg -> a photo of PSTYLE, a woman in a red coat, studio light\n"
    "[ 2/18] img_002.jpg -> a photo of PSTYLE, a man with glasses, outdoors\n"
    "[18/18] img_018.jpg -> a photo of PSTYLE, a child holding a kite\n"
    "Caching latents: 100%|██████████| 18/18 [00:06<00:00,  2.81it/s]\n"
    "Starting training: 1000 steps, 10 epochs, batch size 1, lr 4.0e-04, rank 16\n"
    "flux_train_replicate:   0%|          | 0/1000 [00:00<?, ?it/s]\n"
    "epoch 1/10 done | step 100/1000 | avg_loss=0.4371 | lr=4.0e-04\n"
    "flux_train_replicate:  10%|█         | 100/1000 [01:22<12:18,  1.22it/s, lr: 4.0"
    "e-04 loss: 4.371e-01]\n";

static const progress_case_t cases[] = {
    /* Empty and blank input. */
    {"empty input", LOGS(""), NULL, NONE, ""},
    {"only blank lines", LOGS("\n\n   \n\t\n\r\n"), NULL, NONE, ""},
    {"only ansi codes", LOGS("\x1b[0m\n\x1b[2K\x1b[1A\n"), NULL, NONE, ""},
    {"plain line", LOGS("Found 18 images"), NULL, NONE, "Found 18 images"},

    /* Progress shapes. */
    {"spec example", LOGS("Step 1500/5000 - loss: 0.0234"), "Training", 30.0,
     "Step 1500/5000 - loss: 0.0234"},
    {"epoch x/y", LOGS("epoch 3/10\n"), "Training", 30.0, "epoch 3/10"},
    {"step x of y", LOGS("Step 5 of 10"), "Training", 50.0, "Step 5 of 10"},
    {"step colon", LOGS("step: 5/10"), "Training", 50.0, "step: 5/10"},
    {"steps plural", LOGS("steps 250/1000"), "Training", 25.0, "steps 250/1000"},
    {"spaces around slash", LOGS("step 5 / 10"), "Training", 50.0, "step 5 / 10"},
    {"epoch in brackets", LOGS("Epoch [3/10], Step [100/600], Loss: 0.2"), "Training", 16.7,
     "Epoch [3/10], Step [100/600], Loss: 0.2"},
    {"epoch colon", LOGS("epoch: 2/4"), "Training", 50.0, "epoch: 2/4"},
    {"upper case step", LOGS("STEP 5/10"), "Training", 50.0, "STEP 5/10"},
    {"mixed case step", LOGS("StEp 7/10"), "Training", 70.0, "StEp 7/10"},
    {"of needs spaces", LOGS("step 5of10"), "Training", NONE, "step 5of10"},
    {"tqdm bar", LOGS("flux_train_replicate:  50%|█████     | 500/1000 [06:50<06:50,  1.22it/s]"),
     "Training", 50.0, "flux_train_replicate:  50%|█████     | 500/1000 [06:50<06:50,  1.22it/s]"},
    {"tqdm zero", LOGS("  0%|          | 0/30 [00:00<?, ?it/s]"), "Training", 0.0,
     "0%|          | 0/30 [00:00<?, ?it/s]"},
    {"tqdm seconds per it", LOGS("Sampling: 3/10 [00:09<00:21, 3.00s/it]"), "Training", 30.0,
     "Sampling: 3/10 [00:09<00:21, 3.00s/it]"},
    {"bracket count is no bar", LOGS("[ 1/18] img_001.jpg -> a photo of PSTYLE"), NULL, NONE,
     "[ 1/18] img_001.jpg -> a photo of PSTYLE"},
    {"percent alone", LOGS("Downloading: 45%"), NULL, 45.0, "Downloading: 45%"},
    {"percent decimal", LOGS("progress 45.5%"), NULL, 45.5, "progress 45.5%"},
    {"percent rounded", LOGS("progress 12.345%"), NULL, 12.3, "progress 12.345%"},
    {"percent dot no digit", LOGS("progress 45.%"), NULL, NONE, "progress 45.%"},
    {"percent over 100", LOGS("progress 150%"), NULL, 100.0, "progress 150%"},
    {"percent bar", LOGS(" 50%|█████     |"), NULL, 50.0, "50%|█████     |"},
    {"bar percent before postfix", LOGS(" 50%|█████     | acc=95%"), NULL, 50.0,
     "50%|█████     | acc=95%"},

    /* Precedence inside one line. */
    {"step beats epoch", LOGS("epoch 1/10 done | step 100/1000 | avg_loss=0.4371"), "Training",
     10.0, "epoch 1/10 done | step 100/1000 | avg_loss=0.4371"},
    {"epoch beats bar", LOGS("Epoch 3/10: 45%|████▌     | 450/1000 [00:10<00:12, 45.00it/s]"),
     "Training", 30.0, "Epoch 3/10: 45%|████▌     | 450/1000 [00:10<00:12, 45.00it/s]"},
    {"first step wins", LOGS("step 5/10 (best so far at step 3/10)"), "Training", 50.0,
     "step 5/10 (best so far at step 3/10)"},
    {"pti step counter", LOGS("# PTI :step: 13, epoch: 2:   1%|▏         | 14/1000 [00:04<05:57]"),
     "Training", 1.4, "# PTI :step: 13, epoch: 2:   1%|▏         | 14/1000 [00:04<05:57]"},
    {"checkpoint beats step", LOGS("Saving checkpoint at step 400"), "Saving checkpoint", NONE,
     "Saving checkpoint at step 400"},
    {"validation beats epoch", LOGS("epoch 3/10 validation loss 0.2"), "Validation", 30.0,
     "epoch 3/10 validation loss 0.2"},
    {"checkpoint beats validation", LOGS("Validation loss improved, saving checkpoint"),
     "Saving checkpoint", NONE, "Validation loss improved, saving checkpoint"},
    {"loading beats checkpoint",
     LOGS("Loading checkpoint shards: 100%|██████████| 2/2 [00:05<00:00,  2.50s/it]"),
     "Preprocessing", 100.0,
     "Loading checkpoint shards: 100%|██████████| 2/2 [00:05<00:00,  2.50s/it]"},
    {"warmup beats steps", LOGS("warmup steps: 100"), "Warmup", NONE, "warmup steps: 100"},
    {"warm-up with step", LOGS("Warm-up step 3/10"), "Warmup", 30.0, "Warm-up step 3/10"},
    {"warming up upper case", LOGS("WARMING UP the model"), "Warmup", NONE, "WARMING UP the model"},
    {"preprocessing percent", LOGS("Preprocessing dataset: 45%"), "Preprocessing", 45.0,
     "Preprocessing dataset: 45%"},
    {"validating bar", LOGS("Validating:  20%|██        | 10/50 [00:01<00:04,  9.80it/s]"),
     "Validation", 20.0, "Validating:  20%|██        | 10/50 [00:01<00:04,  9.80it/s]"},
    {"uploading is not loading", LOGS("Uploading weights..."), NULL, NONE, "Uploading weights..."},
    {"steps word is training", LOGS("Starting training: 1000 steps, 10 epochs"), "Training", NONE,
     "Starting training: 1000 steps, 10 epochs"},

    /* Which line wins. */
    {"latest stage wins", LOGS("Saving checkpoint\nstep 5/10 loss 0.1\n"), "Training", 50.0,
     "step 5/10 loss 0.1"},
    {"stage from earlier line", LOGS("step 5/10\nSaving checkpoint to out\n"), "Saving checkpoint",
     50.0, "Saving checkpoint to out"},
    {"plain last line", LOGS("step 5/10\nFound 18 images\n\n"), "Training", 50.0,
     "Found 18 images"},
    {"zero total ignored", LOGS("step 3/10\nstep 0/0\n"), "Training", 30.0, "step 0/0"},
    {"zero total alone", LOGS("step 0/0"), "Training", NONE, "step 0/0"},
    {"x above y caps", LOGS("step 12/10"), "Training", 100.0, "step 12/10"},

    /* Rounding to one decimal. */
    {"rounds down", LOGS("step 3004/10000"), "Training", 30.0, "step 3004/10000"},
    {"rounds third", LOGS("step 1/3"), "Training", 33.3, "step 1/3"},
    {"rounds two thirds", LOGS("step 2/3"), "Training", 66.7, "step 2/3"},
    {"rounds half up", LOGS("step 1/16"), "Training", 6.3, "step 1/16"},

    /* Big numbers. */
    {"30 digit numbers", LOGS("step 123456789012345678901234567890/246913578024691357802469135780"),
     "Training", 50.0, "step 123456789012345678901234567890/246913578024691357802469135780"},
    {"huge x caps", LOGS("step 99999999999999999999999999999999999999/1"), "Training", 100.0,
     "step 99999999999999999999999999999999999999/1"},
    {"huge y rounds to 0", LOGS("step 1/99999999999999999999999"), "Training", 0.0,
     "step 1/99999999999999999999999"},
    {"300 digit numbers",
     LOGS("step 5" ZERO_100 ZERO_100 ZERO_100 "/1" ZERO_100 ZERO_100 ZERO_100 "0"), "Training",
     50.0, "step 5" ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10 "0000"},
    {"tiny ratio of long numbers", LOGS("step 1" ZERO_10 ZERO_10 "/1" ZERO_100), "Training", 0.0,
     "step 1" ZERO_10 ZERO_10 "/1" ZERO_10 ZERO_10 ZERO_10 ZERO_10 ZERO_10 "00"},
    {"slash without total", LOGS("step 3/ of 4"), "Training", NONE, "step 3/ of 4"},
    {"bar without total", LOGS("x 3/ [y]"), NULL, NONE, "x 3/ [y]"},
    {"huge percent caps", LOGS("99999999999999999999999%"), NULL, 100.0,
     "99999999999999999999999%"},

    /* ANSI escapes and control bytes. */
    {"ansi colours", LOGS("\x1b[32mStep 5/10\x1b[0m - \x1b[1;31mloss\x1b[0m 0.5"), "Training", 50.0,
     "Step 5/10 - loss 0.5"},
    {"ansi inside keyword", LOGS("st\x1b[1mep\x1b[0m 3/4"), "Training", 75.0, "step 3/4"},
    {"osc title with bel", LOGS("\x1b]0;my title\aEpoch 2/4"), "Training", 50.0, "Epoch 2/4"},
    {"osc hyperlink with st", LOGS("see \x1b]8;;http://127.0.0.1/x\x1b\\docs\x1b]8;;\x1b\\ now"),
     NULL, NONE, "see docs now"},
    {"unterminated osc", LOGS("text \x1b]0;never ends"), NULL, NONE, "text"},
    {"control bytes dropped", LOGS("a\bb\x7f-c\x01"), NULL, NONE, "ab-c"},
    {"charset and cursor escapes", LOGS("\033(Bstep\0337 1/4\0338 done"), "Training", 25.0,
     "step 1/4 done"},
    {"lone escape at end", LOGS("epoch 1/4\x1b"), "Training", 25.0, "epoch 1/4"},
    {"nul bytes", LOGS("step\0 5/10 with\0nul"), "Training", 50.0, "step 5/10 withnul"},
    {"tabs read as spaces", LOGS("step\t5/10\tloss\t"), "Training", 50.0, "step 5/10 loss"},

    /* Carriage returns. */
    {"cr redraw", LOGS("step 1/10\rstep 2/10\rstep 3/10\n"), "Training", 30.0, "step 3/10"},
    {"cr hides earlier stage", LOGS("Saving checkpoint\rdone"), NULL, NONE, "done"},
    {"crlf lines", LOGS("step 1/4\r\nstep 2/4\r\n"), "Training", 50.0, "step 2/4"},
    {"tqdm redraws",
     LOGS("  0%|          | 0/30 [00:00<?, ?it/s]\r 10%|█         | 3/30 [00:00<00:01, "
          "12.43it/s]\r 20%|██        | 6/30 [00:00<00:01, 12.46it/s]\r\n"),
     "Training", 20.0, "20%|██        | 6/30 [00:00<00:01, 12.46it/s]"},

    /* last_log cuts and trimming. */
    {"trailing spaces trimmed", LOGS("done   \t  \n\n   \n"), NULL, NONE, "done"},
    {"ascii cut at 80", LOGS(A_80 "bcd"), NULL, NONE, A_80},
    {"two byte cut at 80", LOGS(E_ACUTE_80 E_ACUTE_10), NULL, NONE, E_ACUTE_80},
    {"three byte cut at 80", LOGS(BLOCK_80 BLOCK_10), NULL, NONE, BLOCK_80},
    {"four byte cut at 80", LOGS(EMOJI_80 EMOJI_10), NULL, NONE, EMOJI_80},
    {"cut counts characters", LOGS(A_70 "aaaaaaaaa\xc3\xa9xy"), NULL, NONE,
     A_70 "aaaaaaaaa\xc3\xa9"},
    {"cut then trim", LOGS(A_70 "aaaaaaaaa b"), NULL, NONE, A_70 "aaaaaaaaa"},

    /* Invalid UTF-8 becomes U+FFFD. */
    {"invalid byte", LOGS("bad \xff byte"), NULL, NONE, "bad " U_FFFD " byte"},
    {"truncated at end", LOGS("caf\xc3"), NULL, NONE, "caf" U_FFFD},
    {"truncated before ascii", LOGS("\xe2\x96x"), NULL, NONE, U_FFFD "x"},
    {"overlong form", LOGS("\xc0\xaf"), NULL, NONE, U_FFFD U_FFFD},
    {"surrogate", LOGS("x\xed\xa0\x80y"), NULL, NONE, "x" U_FFFD U_FFFD U_FFFD "y"},
    {"above u+10ffff", LOGS("\xf4\x90\x80\x80"), NULL, NONE, U_FFFD U_FFFD U_FFFD U_FFFD},
    {"character split by ansi", LOGS("caf\xc3\x1b[0m\xa9"), NULL, NONE, "caf\xc3\xa9"},

    /* The logs of tests/fixtures/replicate. */
    {"fixture prediction processing", LOGS_OF(fixture_prediction_processing), "Training", 60.0,
     "60%|██████    | 18/30 [00:01<00:00, 12.48it/s]"},
    {"fixture prediction succeeded", LOGS_OF(fixture_prediction_succeeded), "Training", 100.0,
     "Generated image in 2.61s"},
    {"fixture prediction canceled", LOGS_OF(fixture_prediction_canceled), "Training", 30.0,
     "30%|███       | 9/30 [00:00<00:01, 12.49it/s]"},
    {"fixture prediction failed", LOGS_OF(fixture_prediction_failed), NULL, NONE,
     "ValueError: width must be a multiple of 64 (got 1000)"},
    {"fixture training processing", LOGS_OF(fixture_training_processing), "Saving checkpoint", 40.0,
     "Saving checkpoint at step 400 to output/flux_train_replicate/checkpoint_000400.s"},
    {"fixture training pti style", LOGS_OF(fixture_training_processing_pti_style), "Training", 1.4,
     "# PTI :step: 13, epoch: 2:   1%|▏         | 14/1000 [00:04<05:57,  2.74it/s]"},
    {"fixture training succeeded", LOGS_OF(fixture_training_succeeded), "Training", 100.0,
     "Uploading weights..."},
    {"fixture training failed", LOGS_OF(fixture_training_failed), "Training", 41.0,
     "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 ha"},
    {"fixture training canceled", LOGS_OF(fixture_training_canceled), "Training", 10.0,
     "flux_train_replicate:  10%|█         | 100/1000 [01:22<12:18,  1.22it/s, lr: 4.0"},
};

/* Returns the byte count a UTF-8 lead byte announces, or 0 for a byte that cannot lead. */
static size_t utf8_length(unsigned char lead)
{
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        return 2;
    if (lead >= 0xe0 && lead <= 0xef)
        return 3;
    if (lead >= 0xf0 && lead <= 0xf4)
        return 4;
    return 0;
}

/* Returns 1 when s is valid UTF-8 with no C0 control byte and no DEL. */
static int is_clean_utf8(const char *s)
{
    static const unsigned long min_code_point[] = {0, 0, 0x80, 0x800, 0x10000};
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        size_t n = utf8_length(*p);
        unsigned long code_point = n == 1 ? *p : *p & (0x7fu >> n);

        if (n == 0 || *p < 0x20 || *p == 0x7f)
            return 0;

        /* A NUL fails this test, so the loop never reads past the string. */
        for (size_t k = 1; k < n; k++) {
            if ((p[k] & 0xc0) != 0x80)
                return 0;
            code_point = (code_point << 6) | (p[k] & 0x3fu);
        }

        if (code_point < min_code_point[n] || code_point > 0x10ffff)
            return 0;
        if (code_point >= 0xd800 && code_point <= 0xdfff)
            return 0;
        p += n;
    }
    return 1;
}

/* The checker itself must reject what the scan must never output. */
static void test_utf8_checker(void)
{
    CHECK(is_clean_utf8("caf\xc3\xa9 \xe2\x96\x88 \xf0\x9f\x98\x80"));
    CHECK(!is_clean_utf8("\xff"));
    CHECK(!is_clean_utf8("caf\xc3"));
    CHECK(!is_clean_utf8("\xc0\xaf"));
    CHECK(!is_clean_utf8("\xe0\x80\xaf"));
    CHECK(!is_clean_utf8("\xed\xa0\x80"));
    CHECK(!is_clean_utf8("\xf4\x90\x80\x80"));
    CHECK(!is_clean_utf8("tab\there"));
    CHECK(!is_clean_utf8("del\x7f"));
}

static void test_table_case(const progress_case_t *tc)
{
    int failed_before = check_failed;
    jw_progress_t res;

    /* Poison the result, so a field the scan does not set shows up. */
    memset(&res, 0xaa, sizeof(res));
    jw_progress_scan(tc->logs, tc->len, &res);

    CHECK_STR(res.stage, tc->stage);
    CHECK_DOUBLE(res.progress, tc->progress);
    CHECK_STR(res.last_log, tc->last_log);
    CHECK(is_clean_utf8(res.last_log));
    if (check_failed != failed_before)
        fprintf(stderr, "    in case \"%s\"\n", tc->name);
}

static void test_null_logs(void)
{
    jw_progress_t res;

    memset(&res, 0xaa, sizeof(res));
    jw_progress_scan(NULL, 0, &res);
    CHECK_STR(res.stage, NULL);
    CHECK_DOUBLE(res.progress, -1.0);
    CHECK_STR(res.last_log, "");
}

static void test_stage_is_static(void)
{
    jw_progress_t first, second;

    jw_progress_scan(LOGS("step 1/2"), &first);
    jw_progress_scan(LOGS("epoch 1/2"), &second);
    CHECK(first.stage != NULL);
    CHECK(first.stage == second.stage);
}

/* Fills buf with copies of unit, then writes tail at the end; returns the total length. */
static size_t fill_pattern(char *buf, size_t size, const char *unit, const char *tail)
{
    size_t unit_len = strlen(unit), tail_len = strlen(tail), len = 0;

    while (len + unit_len + tail_len <= size) {
        memcpy(buf + len, unit, unit_len);
        len += unit_len;
    }
    memcpy(buf + len, tail, tail_len);
    return len + tail_len;
}

/* A pattern at the end of a 1 MiB line still counts, so no line buffer caps the scan. */
static void test_long_line(void)
{
    size_t size = 1u << 20;
    char *buf = malloc(size);
    jw_progress_t res;

    if (buf == NULL) {
        CHECK(buf != NULL);
        return;
    }
    size_t len = fill_pattern(buf, size, "x \x1b[0m", "step 3/4");
    jw_progress_scan(buf, len, &res);
    CHECK_STR(res.stage, "Training");
    CHECK_DOUBLE(res.progress, 75.0);
    CHECK_INT(strlen(res.last_log), 79);
    free(buf);
}

/*
 * Inputs built to make a backtracking matcher quadratic: runs of partial
 * keywords, separators, digits and escapes. The scan is linear, so each of
 * these 1 MiB inputs takes milliseconds; a quadratic one would hang here.
 */
static void test_adversarial_inputs(void)
{
    static const struct {
        const char *unit;
        const char *tail;
        const char *stage;
        double progress;
    } inputs[] = {
        {"step ", "", "Training", -1.0},
        {"ste", " step 1/2", "Training", 50.0},
        {":", " 1/2 [", NULL, 50.0},
        {"1", "/2 [", NULL, 100.0},
        {"1/", "", NULL, -1.0},
        {"\x1b[", "\x1b[0mstep 1/2", "Training", 50.0},
        {"\x1b]", "step 1/2", NULL, -1.0},
        {"\r", "step 1/2", "Training", 50.0},
        {"\n", "step 1/2", "Training", 50.0},
        {"\xe2\x96", "", NULL, -1.0},
        {"5.5.", "5%", NULL, -1.0},
    };
    size_t size = 1u << 20;
    char *buf = malloc(size);

    if (buf == NULL) {
        CHECK(buf != NULL);
        return;
    }
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        int failed_before = check_failed;
        jw_progress_t res;
        size_t len = fill_pattern(buf, size, inputs[i].unit, inputs[i].tail);

        jw_progress_scan(buf, len, &res);
        CHECK_STR(res.stage, inputs[i].stage);
        CHECK_DOUBLE(res.progress, inputs[i].progress);
        CHECK(is_clean_utf8(res.last_log));
        if (check_failed != failed_before)
            fprintf(stderr, "    in adversarial input %zu\n", i);
    }
    free(buf);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        test_table_case(&cases[i]);

    test_utf8_checker();
    test_null_logs();
    test_stage_is_static();
    test_long_line();
    test_adversarial_inputs();
    CHECK_SUMMARY();
}
