"""The project's targets and the original's published numbers, in one place: the report and
the benchmarks judge against these, nothing else holds them."""

#: `make reproduce` (every notebook at its defaults) on 2 CPU cores, minutes
REPRODUCE_MINUTES = 120
#: the LIIF targets: best encoder / tuned TV on the real patient, training seconds per model,
#: inference seconds per cine
LIIF_TV_RATIO, LIIF_TRAIN_S, LIIF_INFER_S = 0.8, 300, 1.0
#: notebook 04's targets on the real test patient: a static 2D C = 64 has temporal correlation below this
LIIF_STATIC_TCORR = 0.1
#: the original's published LIIF table, relative L1: (R, T_low) -> (RDN, UNet, temporal TV, ZF)
ORIGINAL_LIIF_TABLE = {(3, 4): (0.069, 0.131, 0.098, 0.108), (3, 8): (0.063, 0.121, 0.072, 0.120),
                       (6, 4): (0.097, 0.142, 0.113, 0.247), (6, 8): (0.104, 0.170, 0.086, 0.302)}
#: the lambda study: the conditional network within this many dB of separate fits (above or
#: below) at every shown lambda, for at most this multiple of one fixed fit's time; the
#: automatic lambda within this many dB of the oracle
LAMBDA_COND_GAP_DB, LAMBDA_TIME_RATIO, LAMBDA_AUTO_GAP_DB = 0.5, 2.0, 0.5
