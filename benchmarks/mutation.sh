#!/usr/bin/env bash
# Mutation testing of the science-critical modules with mutmut 3 (config: [tool.mutmut] in
# pyproject.toml), writing results/evidence/mutation.txt. Not part of CI; installs nothing.
#
#   benchmarks/mutation.sh            # every scope below (tens of minutes on 2 cores)
#   benchmarks/mutation.sh core       # the perceptual loss, the quantiser, the verdict rules and
#                                     # statistics, compare-reference (= scopes report quantizer perceptual)
#   benchmarks/mutation.sh report     # or: quantizer, perceptual: one module group of core
#   benchmarks/mutation.sh sampling   # or: fid, resume, narrow (a quicker subset of core);
#                                     # several scopes may be named
#
# MUTATION_JOBS (default 1): parallel mutant workers. MUTATION_KEEP=1 keeps an earlier mutants/
# instead of starting afresh; MUTATION_REPORT_ONLY=1 only rewrites the report from mutants/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}"

if ! "$PYTHON" -c "import mutmut" 2>/dev/null; then
    echo "mutmut is not installed; install it with:  pip install -e '.[mutation]'" >&2
    exit 1
fi

# mutant-name patterns (module.x_function / module.xǁClassǁmethod), by scope
P=seqgan.losses.perceptual
# core = report + quantizer + perceptual (the per-module scopes let a run do one module at a time)
report=(
    "seqgan.report.compare_reference.x__absent*" "seqgan.report.compare_reference.x_compare_runs*"
    "seqgan.report.compare_reference.x_comparison_summary*" "seqgan.report.compare_reference.x_chance_line*"
    "seqgan.report.compare_reference.x__p*"
    "seqgan.report.stats.*" "seqgan.report.verdicts.*"
)
quantizer=("seqgan.nets.quantizer.*")
perceptual=(
    "$P.xǁPerceptualWeightsǁ*" "$P.x_check_alpha*" "$P.x_alpha_weights*" "$P.x_calibrated_alpha_weights*"
    "$P.x_normalize_channels*" "$P.x_tap_distance*" "$P.x_logit_distance*"
    "$P.xǁWeightedPerceptualLossǁ*" "$P.xǁSemanticPerceptualLossǁ*"
)
core=("${report[@]}" "${quantizer[@]}" "${perceptual[@]}")
sampling=("seqgan.sample.filtering.x_top_p_filter*" "seqgan.sample.nar.*" "seqgan.nets.mask_schedule.*")
fid=("seqgan.evaluate.fid.x_frechet_distance*")
resume=(
    "seqgan.artefacts.checkpoints.x_check_weights_only_safe*" "seqgan.artefacts.checkpoints.x_save_resume_state*"
    "seqgan.artefacts.checkpoints.x_load_resume_state*" "seqgan.artefacts.checkpoints.x_capture_rng_state*"
    "seqgan.artefacts.checkpoints.x_restore_rng_state*"
)
# a quicker subset of core (about 250 mutants, not every function): what fitted the first recorded run
narrow=(
    "$P.x_check_alpha*" "$P.x_alpha_weights*" "$P.x_calibrated_alpha_weights*" "$P.x_tap_distance*"
    "$P.xǁWeightedPerceptualLossǁset_term_scales*"
    "seqgan.nets.quantizer.x__histogram_perplexity*" "seqgan.nets.quantizer.xǁCodebookUsageǁ*"
    "seqgan.nets.quantizer.x_codebook_usage*" "seqgan.nets.quantizer.xǁVectorQuantizerǁnearest_ids*"
    "seqgan.nets.quantizer.xǁVectorQuantizerǁ_flat_distances*"
    "seqgan.report.stats.x_two_sample_test*" "seqgan.report.stats.x_holm_rejections*"
    "seqgan.report.stats.xǁTwoSampleTestǁtolerance*"
    "seqgan.report.verdicts.validation_loss.x_paired_verdict*" "seqgan.report.verdicts.usage.*"
    "seqgan.report.compare_reference.x__absent*" "seqgan.report.compare_reference.x_compare_runs*"
)
scopes=("$@")
[ ${#scopes[@]} -eq 0 ] && scopes=(core sampling fid resume)
patterns=()
for scope in "${scopes[@]}"; do
    case "$scope" in
        core) patterns+=("${core[@]}") ;;
        report) patterns+=("${report[@]}") ;;
        quantizer) patterns+=("${quantizer[@]}") ;;
        perceptual) patterns+=("${perceptual[@]}") ;;
        narrow) patterns+=("${narrow[@]}") ;;
        sampling) patterns+=("${sampling[@]}") ;;
        fid) patterns+=("${fid[@]}") ;;
        resume) patterns+=("${resume[@]}") ;;
        *) echo "unknown scope '$scope' (core, report, quantizer, perceptual, narrow, sampling, fid, resume)" >&2; exit 2 ;;
    esac
done

export MUTATION_JOBS="${MUTATION_JOBS:-1}"
# mutmut forks one child per mutant from a process whose tests already ran multithreaded BLAS/OpenMP:
# a forked child's first scipy.linalg call then hangs on the parent's thread pool (every Frechet distance
# mutant "timed out"). One thread each makes the fork safe.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
if [ "${MUTATION_REPORT_ONLY:-0}" != 1 ]; then
    [ "${MUTATION_KEEP:-0}" = 1 ] || rm -rf mutants
    # mutmut exits non-zero when mutants survive; the report is written either way (an interrupted
    # run's unrun mutants count as "not checked")
    nice -n 19 "$PYTHON" -m mutmut run --max-children "$MUTATION_JOBS" "${patterns[@]}" || true
fi
"$PYTHON" benchmarks/mutation_report.py results/evidence/mutation.txt "${patterns[@]}"
