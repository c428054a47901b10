"""Where each config key's documented effect is proven.

EFFECTS maps every key of every command's schema ("data.clip_len", "topk", ...) to the test that
shows its effect on something a user sees ("tests/FILE.py::TEST"). Keys that can never apply to a
command are refused there with one line (action3d.config.applicability) and need no entry for
that command; a key that applies nowhere has no place in a schema. test_option_matrix.py fails
for a schema key without an entry here, or an entry naming a test that does not exist.
"""
from __future__ import annotations

EFFECTS: dict[str, str] = {
    # trainer.*, optim.*, sched.* (lead)
    "trainer.max_epochs": "tests/test_train.py::test_short_run_writes_checkpoints_tensorboard_and_metrics",
    "trainer.precision": "tests/test_trainer_options.py::test_mixed_precision_trains_on_the_cpu_and_the_loss_goes_down",
    "trainer.seed": "tests/test_trainer_options.py::test_the_train_command_passes_trainer_seed_to_the_trainer",
    "trainer.device": "tests/test_trainer_options.py::test_values_that_would_fail_inside_a_library_are_refused_first",
    "trainer.val_every":
        "tests/test_trainer_options.py::test_precise_bn_and_validation_run_only_when_validation_is_due",
    "trainer.ckpt_every": "tests/test_trainer_options.py::test_ckpt_every_keeps_epoch_files",
    "trainer.ckpt_every_minutes":
        "tests/test_trainer_options.py::test_ckpt_every_minutes_writes_last_pt_in_the_middle_of_an_epoch",
    "trainer.resume": "tests/test_train.py::test_resumed_run_ends_with_the_same_weights",
    "trainer.compile": "tests/test_trainer_options.py::test_compile_trains_three_steps_to_the_eager_loss",
    "trainer.channels_last": "tests/test_trainer_options.py::test_channels_last_off_gives_the_same_logits",
    "trainer.sync_bn": "tests/test_trainer_options.py::test_sync_bn_on_cpu_is_refused_by_the_library_too",
    "trainer.precise_bn_batches":
        "tests/test_trainer_options.py::test_precise_bn_and_validation_run_only_when_validation_is_due",
    "trainer.grad_clip": "tests/test_trainer_options.py::test_grad_clip_limits_the_gradient_norm_of_each_step",
    "trainer.accum_steps":
        "tests/test_trainer_options.py::test_accumulation_leftover_does_not_leak_into_the_next_epoch",
    "trainer.label_smoothing": "tests/test_trainer_options.py::test_label_smoothing_reaches_the_loss",
    "trainer.log_every": "tests/test_trainer_options.py::test_log_every_sets_the_logged_points",
    "trainer.max_steps":
        "tests/test_trainer_options.py::test_max_steps_validates_before_it_ends_without_changing_last_pt",
    "trainer.data_wait_warn": "tests/test_trainer_options.py::test_data_wait_warn_is_the_threshold_of_the_advice",
    "optim.name": "tests/test_optim.py::test_optimizer_kinds_and_scheduler_drive_lr",
    "optim.lr": "tests/test_optim.py::test_optim_keys_reach_the_optimizer_from_the_config",
    "optim.momentum": "tests/test_optim.py::test_optim_keys_reach_the_optimizer_from_the_config",
    "optim.nesterov": "tests/test_optim.py::test_optim_keys_reach_the_optimizer_from_the_config",
    "optim.weight_decay": "tests/test_optim.py::test_optim_keys_reach_the_optimizer_from_the_config",
    "optim.betas": "tests/test_optim.py::test_optim_keys_reach_the_optimizer_from_the_config",
    "optim.no_decay_norm_bias": "tests/test_optim.py::test_optim_keys_reach_the_optimizer_from_the_config",
    "sched.name": "tests/test_optim.py::test_warmup_then_cosine_reaches_min_lr",
    "sched.warmup_epochs": "tests/test_optim.py::test_warmup_then_cosine_reaches_min_lr",
    "sched.warmup_start_factor": "tests/test_optim.py::test_warmup_then_cosine_reaches_min_lr",
    "sched.min_lr": "tests/test_optim.py::test_warmup_then_cosine_reaches_min_lr",
    "sched.milestones": "tests/test_optim.py::test_multistep_decay",
    "sched.gamma": "tests/test_optim.py::test_multistep_decay",
    "data.name": "tests/test_trainer_options.py::test_the_log_names_the_dataset_and_its_size",
    # model.*, data.*, eval.* and the info/data/eval/predict command keys (option-matrix helper)
    "model.name": "tests/test_options_model.py::test_name_is_printed_by_info",
    "model.arch": "tests/test_options_model.py::test_arch_slowfast_builds_two_pathways",
    "model.depth": "tests/test_options_model.py::test_depth_chooses_the_block_kind_and_the_default_blocks_per_stage",
    "model.num_classes": "tests/test_options_model.py::test_num_classes_sets_the_logits",
    "model.pretrained": "tests/test_options_model.py::test_pretrained_loads_the_checkpoint_weights",
    "model.pretrained2d": "tests/test_options_model.py::test_pretrained2d_false_refuses_2d_imagenet_weights",
    "model.stage_blocks": "tests/test_options_model.py::test_stage_blocks_sets_the_blocks_of_each_stage",
    "model.in_channels": "tests/test_options_model.py::test_in_channels_sets_the_stem_input_channels",
    "model.base_channels": "tests/test_options_model.py::test_stage_shapes_follow_the_stem_stride_and_stage_keys",
    "model.out_indices":
        "tests/test_options_model.py::test_out_indices_returns_the_listed_stages_and_the_head_uses_the_last",
    "model.num_stages": "tests/test_options_model.py::test_num_stages_sets_the_stages_that_per_stage_lists_describe",
    "model.spatial_strides": "tests/test_options_model.py::test_stage_shapes_follow_the_stem_stride_and_stage_keys",
    "model.temporal_strides": "tests/test_options_model.py::test_stage_shapes_follow_the_stem_stride_and_stage_keys",
    "model.dilations": "tests/test_options_model.py::test_dilations_dilate_the_spatial_convs_of_their_stage",
    "model.conv1_kernel": "tests/test_options_model.py::test_conv1_kernel_sets_the_stem_kernel_and_keeps_same_padding",
    "model.conv1_stride": "tests/test_options_model.py::test_stage_shapes_follow_the_stem_stride_and_stage_keys",
    "model.pool1_stride": "tests/test_options_model.py::test_stage_shapes_follow_the_stem_stride_and_stage_keys",
    "model.with_pool1": "tests/test_options_model.py::test_stage_shapes_follow_the_stem_stride_and_stage_keys",
    "model.with_pool2": "tests/test_options_model.py::test_stage_shapes_follow_the_stem_stride_and_stage_keys",
    "model.style": "tests/test_options_model.py::test_style_caffe_moves_the_bottleneck_stride_to_the_first_1x1_conv",
    "model.advanced":
        "tests/test_options_model.py::test_advanced_average_pools_in_the_shortcut_before_an_unstrided_conv",
    "model.shortcut_type": "tests/test_options_model.py::test_shortcut_type_a_is_a_parameter_free_zero_padded_identity",
    "model.frozen_stages": "tests/test_options_model.py::test_frozen_stages_freeze_the_stem_and_first_stages",
    "model.inflate": "tests/test_options_model.py::test_inflate_sets_the_temporal_kernels_per_stage_and_per_block",
    "model.inflate_style": "tests/test_options_model.py::test_inflate_style_chooses_the_temporal_conv_of_bottlenecks",
    "model.non_local": "tests/test_options_model.py::test_non_local_inserts_blocks_after_the_flagged_blocks",
    "model.non_local_mode": "tests/test_options_model.py::test_non_local_mode_changes_the_attention",
    "model.non_local_sub_sample": "tests/test_options_model.py::test_non_local_sub_sample_max_pools_the_keys",
    "model.non_local_use_scale": "tests/test_options_model.py::test_non_local_use_scale_divides_the_affinities",
    "model.norm_eval": "tests/test_options_model.py::test_norm_eval_keeps_the_bn_statistics_while_training",
    "model.with_cp": "tests/test_options_model.py::test_with_cp_checkpoints_every_block_with_the_same_gradients",
    "model.zero_init_residual": "tests/test_options_model.py::test_zero_init_residual_zeroes_the_last_bn_of_each_block",
    "model.dropout": "tests/test_options_model.py::test_dropout_drops_features_before_the_classifier",
    "model.resample_rate": "tests/test_options_model.py::test_slowfast_rates_set_each_pathway_frames_and_channels",
    "model.speed_ratio": "tests/test_options_model.py::test_slowfast_rates_set_each_pathway_frames_and_channels",
    "model.channel_ratio": "tests/test_options_model.py::test_slowfast_rates_set_each_pathway_frames_and_channels",
    "model.fusion_kernel": "tests/test_options_model.py::test_slowfast_fusion_kernel_sets_the_lateral_temporal_kernel",
    "model.fast_conv1_kernel":
        "tests/test_options_model.py::test_slowfast_fast_conv1_kernel_and_fast_inflate_shape_the_fast_pathway",
    "model.fast_inflate":
        "tests/test_options_model.py::test_slowfast_fast_conv1_kernel_and_fast_inflate_shape_the_fast_pathway",
    # model families (issue 20, models helper)
    "model.pool1_kernel":
        "tests/test_options_families.py::test_pool1_kernel_sets_the_stem_max_pool_kernel_and_its_padding",
    "model.shortcut_norm":
        "tests/test_options_families.py::test_shortcut_norm_widening_drops_the_norm_of_unwidened_shortcuts",
    "model.lateral_norm": "tests/test_options_families.py::test_lateral_norm_adds_bn_and_relu_after_every_lateral_conv",
    "model.slow_sampling":
        "tests/test_options_families.py::test_slow_sampling_linspace_takes_the_slow_frames_at_linspace",
    "model.conv_type": "tests/test_options_families.py::test_conv_type_2plus1d_factorises_the_spatiotemporal_convs",
    "model.temporal_first":
        "tests/test_options_families.py::test_temporal_first_runs_the_temporal_conv_of_a_2plus1d_conv_first",
    "model.mid_channels_rule":
        "tests/test_options_families.py::test_mid_channels_rule_sets_the_mid_channels_of_each_2plus1d_conv",
    "model.conv1_mid_channels":
        "tests/test_options_families.py::test_conv1_mid_channels_sets_the_mid_channels_of_a_2plus1d_stem",
    "model.bottleneck_mode": "tests/test_options_families.py::test_bottleneck_mode_makes_the_middle_conv_channel_wise",
    "model.norm_eps": "tests/test_options_families.py::test_norm_eps_sets_the_epsilon_of_every_batch_norm",
    "model.bottleneck_ratio": "tests/test_options_families.py::test_bottleneck_ratio_sets_the_x3d_inner_widths",
    "model.se_ratio": "tests/test_options_families.py::test_se_ratio_puts_squeeze_excitation_on_every_other_x3d_block",
    "model.head_channels": "tests/test_options_families.py::test_head_channels_sets_the_x3d_pre_logit_projection",
    "data.format": "tests/test_options_data.py::test_format_chooses_how_the_dataset_is_read",
    "data.root": "tests/test_options_data.py::test_root_is_the_base_of_the_listed_paths",
    "data.train_list": "tests/test_options_data.py::test_train_and_val_lists_choose_the_videos_of_each_split",
    "data.val_list": "tests/test_options_data.py::test_train_and_val_lists_choose_the_videos_of_each_split",
    "data.classes_file": "tests/test_options_data.py::test_classes_file_names_the_classes",
    "data.annotation_dir": "tests/test_options_data.py::test_annotation_dir_holds_the_class_list_and_split_files",
    "data.split": "tests/test_options_data.py::test_split_chooses_the_official_split",
    "data.clip_len": "tests/test_options_data.py::test_clip_len_and_frame_interval_choose_the_frames",
    "data.frame_interval": "tests/test_options_data.py::test_clip_len_and_frame_interval_choose_the_frames",
    "data.num_clips": "tests/test_options_data.py::test_num_clips_gives_that_many_clips_per_video",
    "data.out_of_bound": "tests/test_options_data.py::test_out_of_bound_fills_clips_longer_than_the_video",
    "data.short_side": "tests/test_options_data.py::test_short_side_sets_the_scale_of_test_crops",
    "data.crop_size": "tests/test_options_data.py::test_crop_size_sets_the_clip_size",
    "data.train_crop": "tests/test_options_data.py::test_train_crop_multiscale_takes_crops_of_fixed_scales",
    "data.crop_area_range":
        "tests/test_options_data.py::test_crop_area_range_sets_the_share_of_the_frame_a_training_crop_covers",
    "data.flip": "tests/test_options_data.py::test_flip_mirrors_some_training_clips",
    "data.decode_short_side": "tests/test_options_data.py::test_decode_short_side_resizes_frames_inside_the_decoder",
    "data.decode_threads": "tests/test_options_data.py::test_decode_threads_sets_the_decoder_thread_count",
    "data.batch_size": "tests/test_options_data.py::test_batch_size_sets_the_clips_per_training_step",
    "data.pin_memory": "tests/test_options_data.py::test_loader_keys_reach_the_training_data_loader",
    "data.persistent_workers": "tests/test_options_data.py::test_loader_keys_reach_the_training_data_loader",
    "data.prefetch_factor": "tests/test_options_data.py::test_loader_keys_reach_the_training_data_loader",
    "data.num_workers": "tests/test_workers.py::test_kinetics_preset_on_this_machine_starts_no_worker_warning",
    "data.preset_workers": "tests/test_workers.py::test_the_log_names_the_number_it_chose_once",
    "data.autorotate": "tests/test_rotation.py::test_dataset_clips_of_a_portrait_phone_video_are_upright",
    "data.mean": "tests/test_options_data.py::test_mean_and_std_normalise_batches_on_the_device",
    "data.std": "tests/test_options_data.py::test_mean_and_std_normalise_batches_on_the_device",
    "data.max_fail_ratio": "tests/test_options_data.py::test_max_fail_ratio_sets_when_a_mostly_broken_dataset_stops",
    "data.shard_shuffle": "tests/test_shards.py::test_an_epoch_permutes_the_shards_and_shard_shuffle_mixes_each_range",
    "data.synthetic.num_classes": "tests/test_options_data.py::test_synthetic_keys_change_the_generated_set",
    "data.synthetic.train_per_class": "tests/test_options_data.py::test_synthetic_keys_change_the_generated_set",
    "data.synthetic.val_per_class": "tests/test_options_data.py::test_synthetic_keys_change_the_generated_set",
    "data.synthetic.num_frames": "tests/test_options_data.py::test_synthetic_keys_change_the_generated_set",
    "data.synthetic.size": "tests/test_options_data.py::test_synthetic_keys_change_the_generated_set",
    "data.synthetic.seed": "tests/test_options_data.py::test_synthetic_keys_change_the_generated_set",
    "eval.num_clips": "tests/test_options_commands.py::test_num_clips_and_num_crops_set_the_views_scored_per_video",
    "eval.num_crops": "tests/test_options_commands.py::test_num_clips_and_num_crops_set_the_views_scored_per_video",
    "eval.average": "tests/test_options_commands.py::test_average_chooses_what_the_views_average",
    "eval.batch_size": "tests/test_options_commands.py::test_eval_batch_size_sets_the_videos_scored_at_once",
    "input": "tests/test_options_commands.py::test_input_sets_the_clip_info_summarises",
    "default_num_classes":
        "tests/test_options_commands.py::test_default_num_classes_sizes_the_head_when_model_num_classes_is_unset",
    "action": "tests/test_options_commands.py::test_action_chooses_the_tool",
    "out": "tests/test_options_commands.py::test_out_names_the_folder_each_tool_writes",
    "short_side": "tests/test_options_commands.py::test_short_side_sets_the_size_prepare_writes",
    "gop": "tests/test_options_commands.py::test_gop_sets_the_keyframe_interval_prepare_writes",
    "crf": "tests/test_options_commands.py::test_crf_sets_the_quality_prepare_writes",
    "workers": "tests/test_options_commands.py::test_workers_sets_the_processes_of_check_and_prepare",
    "min_frames": "tests/test_options_commands.py::test_min_frames_sets_which_videos_check_reports_as_short",
    "split": "tests/test_options_commands.py::test_split_chooses_the_videos_eval_and_data_check_read",
    "part": "tests/test_prepare.py::test_union_of_parts_equals_one_machine_run",
    "merge": "tests/test_prepare.py::test_union_of_parts_equals_one_machine_run",
    "shard_mb": "tests/test_shards.py::test_pack_writes_webdataset_shards_of_shard_mb",
    "quality": "tests/test_extract.py::test_short_side_and_quality_set_what_is_written",
    # frame folders (issue 21)
    "data.filename_tmpl": "tests/test_rawframes.py::test_filename_tmpl_and_start_index_read_charades_folders",
    "data.start_index": "tests/test_rawframes.py::test_filename_tmpl_and_start_index_read_charades_folders",
    "data.fps": "tests/test_rawframes.py::test_with_fps_the_folders_are_resampled_to_target_fps",
    "ckpt": "tests/test_options_commands.py::test_ckpt_chooses_the_model_that_predicts_and_evaluates",
    "video": "tests/test_options_commands.py::test_video_is_one_file_or_every_video_of_a_folder",
    "topk": "tests/test_options_commands.py::test_topk_sets_the_classes_listed_per_video",
    "json": "tests/test_options_commands.py::test_json_writes_the_predictions_to_a_file",
    # export, embed, explain and predict's windows (issue 13)
    "format": "tests/test_export.py::test_export_matches_pytorch_on_uint8_clips_with_any_batch_size",
    "window": "tests/test_predict_windows.py::test_timeline_follows_the_classes_of_the_long_video",
    "stride": "tests/test_predict_windows.py::test_predict_with_window_prints_a_timeline_and_writes_json_and_png",
    "timeline": "tests/test_predict_windows.py::test_predict_with_window_prints_a_timeline_and_writes_json_and_png",
    "class_name": "tests/test_explain.py::test_explain_command_writes_every_frame_and_prints_the_layer",
    # fine-tuning and imbalanced data (issue 15)
    "optim.backbone_lr_mult": "tests/test_finetune.py::test_backbone_lr_mult_zero_trains_only_the_head",
    "data.sampler":
        "tests/test_balanced.py::test_balanced_sampler_raises_mean_class_accuracy_on_imbalanced_data",
    "trainer.class_weights":
        "tests/test_balanced.py::test_class_weights_auto_weigh_the_loss_by_inverse_class_frequency",
    # the zoos: frame rate, test protocols, scores out, zoo= presets (issue 20, eval side)
    "data.target_fps": "tests/test_zoo_protocols.py::test_target_fps_reaches_training_eval_clips_and_windows",
    "data.test_resize":
        "tests/test_zoo_protocols.py::test_test_resize_replaces_the_short_side_in_the_action3d_views",
    "data.resize_antialias":
        "tests/test_zoo_protocols.py::test_zoo_views_are_within_one_level_of_a_plain_bilinear_resize_then_crop",
    "eval.protocol":
        "tests/test_zoo.py::test_a_torchvision_protocol_eval_equals_videoclassification_on_the_same_frames",
    "eval.dump": "tests/test_zoo.py::test_a_torchvision_protocol_eval_equals_videoclassification_on_the_same_frames",
    "target_fps": "tests/test_zoo.py::test_prepare_at_a_target_rate_stores_the_frames_the_resampling_picks",
    "zoo.name": "tests/test_zoo.py::test_every_zoo_file_says_where_its_figures_come_from_and_sets_the_whole_protocol",
    "zoo.model": "tests/test_zoo.py::test_a_model_choice_or_architecture_key_with_zoo_is_refused_in_one_line",
    "zoo.classes": "tests/test_zoo.py::test_classes_map_by_name_and_a_class_the_zoo_lacks_is_refused",
    "zoo.num_classes": "tests/test_zoo.py::test_classes_map_by_name_and_a_class_the_zoo_lacks_is_refused",
    "zoo.architecture": "tests/test_zoo.py::test_zoo_architecture_keys_are_the_zoos_own",
    "zoo.refused": "tests/test_zoo.py::test_a_zoo_checkpoint_action3d_cannot_build_is_refused_naming_the_nearest",
    # issue 21, training side: batch mixing, multi-label targets, the monitor, early stopping, trackers
    "data.mixup_alpha":
        "tests/test_training_recipes.py::test_mixup_mixes_each_clip_with_its_reversed_partner_by_one_lam_per_batch",
    "data.cutmix_alpha":
        "tests/test_training_recipes.py::test_cutmix_box_is_the_same_on_every_frame_and_lam_is_the_share_it_leaves",
    "data.mix_prob": "tests/test_training_recipes.py::test_mix_prob_and_mix_switch_prob_choose_what_each_batch_gets",
    "data.mix_switch_prob":
        "tests/test_training_recipes.py::test_mix_prob_and_mix_switch_prob_choose_what_each_batch_gets",
    "data.multi_label":
        "tests/test_training_recipes.py::test_multi_label_trains_with_bce_and_pos_weight_and_eval_and_predict_follow",
    "trainer.monitor": "tests/test_training_recipes.py::test_monitor_loss_selects_best_pt_by_the_lowest_val_loss",
    "trainer.early_stop_patience":
        "tests/test_training_recipes.py::test_early_stopping_ends_the_run_says_why_and_a_resumed_run_keeps_the_count",
    "trainer.early_stop_min_delta":
        "tests/test_training_recipes.py::test_early_stopping_ends_the_run_says_why_and_a_resumed_run_keeps_the_count",
    "trainer.loggers":
        "tests/test_trackers.py::test_two_epochs_against_a_real_mlflow_server_are_read_back_through_its_client",
    # issue 21, data side: video-consistent augmentation in the loader
    "data.train_scale_range":
        "tests/test_augment.py::test_train_crop_short_side_jitter_resizes_the_short_side_into_train_scale_range",
    "data.rand_augment_n": "tests/test_augment.py::test_rand_augment_n_draws_n_ops_per_clip_each_applied_half_the_time",
    "data.rand_augment_m": "tests/test_augment.py::test_rand_augment_m_and_mstd_set_the_magnitude_of_every_op",
    "data.rand_augment_mstd": "tests/test_augment.py::test_rand_augment_m_and_mstd_set_the_magnitude_of_every_op",
    "data.augmix_severity": "tests/test_augment.py::test_augmix_severity_width_and_depth_set_the_chains",
    "data.augmix_width": "tests/test_augment.py::test_augmix_severity_width_and_depth_set_the_chains",
    "data.augmix_depth": "tests/test_augment.py::test_augmix_severity_width_and_depth_set_the_chains",
    "data.augmix_alpha": "tests/test_augment.py::test_augmix_alpha_sets_how_far_the_mix_moves_from_the_clip",
    "data.color_jitter": "tests/test_augment.py::test_color_jitter_entries_set_brightness_contrast_saturation_and_hue",
    "data.grayscale_prob": "tests/test_augment.py::test_grayscale_prob_turns_that_share_of_clips_gray",
    "data.erase_prob":
        "tests/test_augment.py::test_erase_prob_fills_one_box_per_clip_with_noise_of_the_data_mean_and_std",
    "data.erase_area_range": "tests/test_augment.py::test_erase_area_range_sets_the_share_of_the_frame_the_box_covers",
}
